"""abm-run (also ``python -m abm``): run one configured simulation into a Hydra run folder.

Data flow: command line -> Hydra config (``pkg://abm.conf``) -> :func:`abm.runner.simulate`
(model + observers) -> run folder: ``run.h5``, ``run.xdmf``, ``metrics.csv``,
``checkpoint.h5``, ``summary.png``, Hydra's ``.hydra/`` and ``run.log``.

Bad input stops before anything is written: the overrides are composed and validated (and a
``resume=PATH/run.h5`` checked against its checkpoint) before Hydra starts, and any problem is
one line on stderr with exit code 2. ``resume=PATH/run.h5`` runs in the folder of that file.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import abm.config  # noqa: F401 - registers the config schema ("base_config") for Hydra

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
KEY_METRICS = (
    "il1b_fluid", "tnf_fluid", "il10_fluid", "pge2_fluid", "macrophage_m1", "macrophage_m2",
    "fls_activated", "chondrocyte_catabolic", "msc_alive", "msc_licensed",
    "cartilage_agg", "cartilage_col2",
)  # fmt: skip


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    print(f"abm-run: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _override_value(overrides: Sequence[str], key: str) -> str | None:
    for item in overrides:
        if item.split("=", 1)[0].lstrip("+") == key and "=" in item:
            return item.split("=", 1)[1]
    return None


def _quote(value: str) -> str:
    """``value`` as a Hydra override value (quoted when it holds special characters)."""
    if re.fullmatch(r"[\w/.\-:@]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def precheck(argv: Sequence[str]) -> list[str]:
    """Validate the overrides of ``argv`` as abm-run would; returns argv to hand to Hydra.

    Exits with one line (code 2) on a bad override, an unusable resume, or a fresh run aimed at
    a folder that already holds a ``run.h5``. With ``resume=`` and no ``hydra.run.dir``, adds
    ``hydra.run.dir=<folder of run.h5>`` so the run continues where it was.
    """
    argv = list(argv)
    if any(a in ("-m", "--multirun") for a in argv):
        _precheck_sweep([a for a in argv if not a.startswith("-")])
        return argv
    if any(a.startswith("-") for a in argv):  # --cfg, --help, ...: Hydra's business
        return argv
    from abm.config import compose
    from abm.errors import ConfigError, ResumeError
    from abm.runner import resolve_resume
    from abm.schema import RUN_FILE

    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        cfg = compose(overrides)
        cfg, ckpt = resolve_resume(cfg, overrides)
    except (ConfigError, ResumeError) as exc:
        _fail(str(exc))
    run_dir = _override_value(argv, "hydra.run.dir")
    if ckpt is not None and run_dir is None:
        argv.append(f"hydra.run.dir={_quote(str(ckpt.path.parent))}")
    elif ckpt is None and run_dir is not None and (Path(run_dir) / RUN_FILE).exists():
        _fail(
            f"hydra.run.dir={run_dir}: already holds a {RUN_FILE} (continue it with "
            f"resume={Path(run_dir) / RUN_FILE}, or choose another folder)"
        )
    return argv


def _precheck_sweep(args: Sequence[str], limit: int = 256) -> None:
    """Validate every job of a ``-m`` sweep (up to ``limit`` jobs) before Hydra starts any."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from abm.config import compose
    from abm.errors import ConfigError

    args = [a for a in args if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as exc:
        _fail(" ".join(str(exc).split()))
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            try:
                values = list(ov.sweep_string_iterator())
            except HydraException:  # ranges/intervals of other sweepers: check the rest only
                continue
            choices.append([f"{ov.get_key_element()}={v}" for v in values])
        else:
            choices.append([ov.input_line])
    for job in itertools.islice(itertools.product(*choices), limit):
        try:
            compose(list(job))
        except ConfigError as exc:
            _fail(str(exc))


def _summary(start, stats, run_dir: Path) -> str:
    metrics = start.model.metrics
    lines = [f"run folder {run_dir}", stats.table(), "  metric                 start        end"]
    for name in KEY_METRICS:
        if name in metrics:
            col = metrics[name]
            lines.append(f"  {name:<22} {col.iloc[0]:>10.4g} {col.iloc[-1]:>10.4g}")
    for path in sorted(run_dir.iterdir()):
        if path.is_file():
            lines.append(f"  {path.name:<22} {path.stat().st_size / 1e6:>10.2f} MB")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="pkg://abm.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from abm.config import validate
    from abm.errors import ConfigError, ResumeError, SimulationError
    from abm.replay import load_run
    from abm.replay.plots import summary_figure
    from abm.runner import simulate
    from abm.schema import RUN_FILE, SUMMARY_FILE

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    try:
        cfg = validate(cfg)
        start, stats = simulate(cfg, run_dir, overrides)
    except (ConfigError, ResumeError) as exc:
        _fail(str(exc))
    except SimulationError as exc:
        _fail(f"{exc} (frames and metrics up to here are in {run_dir})", EXIT_FAILED)
    except KeyboardInterrupt:
        _fail(f"interrupted; frames and metrics up to here are in {run_dir}", 130)
    if start.resume_from is not None:  # Hydra saved the command line's config; keep the real one
        OmegaConf.save(start.cfg, run_dir / ".hydra" / "config.yaml")
    if start.cfg.output.get("summary_png", True):
        with load_run(run_dir / RUN_FILE) as run:
            summary_figure(run, run_dir / SUMMARY_FILE)
    log.info("done\n%s", _summary(start, stats, run_dir))


def main() -> None:
    """Console script ``abm-run``."""
    sys.argv[1:] = precheck(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
