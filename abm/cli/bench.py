"""abm-bench: CPU vs GPU benchmark table (bench.json + bench.png + a printed table).

Data flow: command line -> benchmark cases (the lattice solver alone through
``kernels.diffusion.make_stepper``; whole model steps through ``abm.compose`` +
``abm.JointModel``) -> timed, synchronized steps on each backend (medians of repeats) ->
``bench.json`` (results + machine info), ``bench.png`` (throughput bars, speedup ratios) and a
plain-text table on stdout. ``scripts/bench_model.py`` reuses these functions for the
model-scale report (1e4-1e6 cells, the default 2D run's wall time, peak RSS of child runs).

Usage::

    abm-bench                                   # numpy (+ cupy if a CUDA device answers)
    abm-bench --backends numpy cupy --what lattice cells --sizes full --repeats 5 --out DIR

A backend that is unknown or unusable here stops before any work with one line on stderr and
exit code 2. Timings are wall-clock medians; a step is timed between two device
synchronizations, so GPU times include the kernels' completion.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abm.errors import BenchError

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
SCHEMA = "oa-abm-bench/1"
KNOWN_BACKENDS = ("numpy", "cupy")
WHAT = ("lattice", "cells")
SIZES = ("small", "full")
REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------ cases
LATTICE_FIELDS = 8
LATTICE_DX_UM = 10.0
LATTICE_DT_MIN = 2.0
# per-field D (µm²/min) in 4 layers along axis 0 (bone-side cartilage, cartilage, fluid,
# synovium), scaled per field; decay (1/min) per field. The layering is what the joint has.
LATTICE_LAYERS_D = np.array([[30.0, 60.0, 1500.0, 300.0]]) * np.linspace(0.5, 2.0, 8)[:, None]
LATTICE_DECAY = np.linspace(0.001, 0.05, 8)
LATTICE_SHAPES = {
    "small": {"2d-128": (128, 128), "3d-32": (32, 32, 32)},
    "full": {"2d-512": (512, 512), "3d-128": (128, 128, 128)},
}

# scenario densities of conf/scenario/oa.yaml (fractions of voxels); scaled to reach a count
OA_DENSITIES = {
    "mac_density": 0.06,
    "fls_density": 0.06,
    "fls_lining_density": 0.9,
    "tcell_density": 0.01,
}


def density_overrides(scale: float) -> list[str]:
    """Hydra overrides scaling the OA scenario's cell densities by ``scale`` (each capped at 1).

    Chondrocyte density (a measured value, biology.chondrocyte.density) is left as it is.
    """
    return [f"scenario.{k}={min(1.0, v * scale):.6g}" for k, v in OA_DENSITIES.items()]


@dataclass(frozen=True)
class CellCase:
    """A whole-model benchmark: Hydra overrides and the cell count they aim at (approx.)."""

    name: str
    overrides: tuple[str, ...]
    target_cells: int


# MSCs are injected at t = 0 (therapy.day=0: they appear at the end of the first, warm-up
# step) so every timed step runs all five cell types' rules.
_MSC_T0 = ("therapy=msc", "therapy.day=0")
CELL_CASES: dict[str, dict[str, CellCase]] = {
    "small": {
        c.name: c
        for c in (
            CellCase(
                "2d-small",
                (
                    *_MSC_T0,
                    "lattice.shape=[100,40]",
                    "lattice.bone_um=50",
                    "lattice.cartilage_um=300",
                    "lattice.fluid_um=300",
                ),
                600,
            ),
            CellCase("3d-small", (*_MSC_T0, "lattice=3d", "lattice.shape=[80,12,12]"), 900),
        )
    },
    "full": {
        c.name: c
        for c in (
            # 2D: the default layering, 3x wider than the default [193,256] (~3.5e3 cells)
            CellCase("2d-1e4", (*_MSC_T0, "lattice.shape=[193,768]"), 10_000),
            # 3D: the 3d layering; densities scaled so that 128^3 holds ~1e5 cells
            CellCase("3d-1e4", (*_MSC_T0, "lattice=3d", "lattice.shape=[128,32,32]"), 10_000),
            CellCase("3d-1e5", (*_MSC_T0, "lattice=3d", *density_overrides(0.56)), 100_000),
            CellCase(
                "3d-1e6",
                (*_MSC_T0, "lattice=3d", "lattice.shape=[128,256,256]", *density_overrides(1.6)),
                1_000_000,
            ),
        )
    },
}


# ------------------------------------------------------------------------------------ backends


def default_backends() -> list[str]:
    """numpy, plus cupy when a CUDA device answers."""
    from abm.backend import cuda_device_count

    return ["numpy", "cupy"] if cuda_device_count() > 0 else ["numpy"]


def check_backends(names: Sequence[str]) -> list[str]:
    """Validate backend names (unknown or unusable -> :class:`BenchError`, one line)."""
    from abm.backend import BackendError, get_backend

    out: list[str] = []
    for name in names:
        if name not in KNOWN_BACKENDS:
            raise BenchError(f"--backends: {name!r} is not one of {', '.join(KNOWN_BACKENDS)}")
        try:
            get_backend(name)
        except BackendError as exc:
            raise BenchError(f"--backends {name}: {exc}") from None
        if name not in out:
            out.append(name)
    return out


def _xp(name: str) -> Any:
    from abm.backend import get_backend

    return get_backend(name).xp


# ------------------------------------------------------------------------------------ timing
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def time_calls(
    fn: Callable[[], Any], repeats: int, sync: Callable[[], None], warmup: int = 1
) -> list[float]:
    """Wall times (s) of ``repeats`` calls of ``fn``, each between two ``sync()``."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def lattice_problem(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-voxel D (F, *shape), decay (F, 1..) and a random u (F, *shape) float32 (host)."""
    shape = tuple(shape)
    layers = LATTICE_LAYERS_D.shape[1]
    n0 = shape[0]
    which = np.minimum(np.arange(n0) * layers // n0, layers - 1)
    D = LATTICE_LAYERS_D[:, which].reshape((LATTICE_FIELDS, n0) + (1,) * (len(shape) - 1))
    D = np.ascontiguousarray(np.broadcast_to(D, (LATTICE_FIELDS, *shape)))
    decay = LATTICE_DECAY.reshape((LATTICE_FIELDS,) + (1,) * len(shape))
    u = np.random.default_rng(0).random((LATTICE_FIELDS, *shape)).astype(np.float32)
    return D, decay, u


def bench_lattice(case: str, shape: Sequence[int], backend: str, repeats: int) -> dict[str, Any]:
    """One implicit LOD step (float32, 8 fields, layered per-voxel D): median s and M
    voxel-field updates/s."""
    from abm.backend import synchronize
    from kernels.diffusion import make_stepper

    xp = _xp(backend)
    D, decay, u0 = lattice_problem(shape)
    t0 = time.perf_counter()
    step = make_stepper(
        tuple(shape),
        LATTICE_DX_UM,
        LATTICE_DT_MIN,
        xp.asarray(D),
        xp.asarray(decay),
        xp=xp,
        dtype="float32",
    )
    state = {"u": xp.asarray(u0)}
    build_s = time.perf_counter() - t0

    def one() -> None:
        state["u"] = step(state["u"])

    times = time_calls(one, repeats, lambda: synchronize(xp))
    med = median(times)
    updates = int(u0.size)
    return {
        "what": "lattice",
        "case": case,
        "backend": backend,
        "shape": list(shape),
        "fields": LATTICE_FIELDS,
        "voxel_field_updates": updates,
        "build_s": build_s,
        "times_s": times,
        "median_s": med,
        "throughput": updates / med / 1e6,
        "unit": "M voxel-field updates/s",
    }


def n_cells(model: Any) -> int:
    """Cells of every type in ``model``."""
    return int(sum(p.n for p in model.pops.values()))


@dataclass
class StepTimes:
    """Per-step wall times (s) of whole model steps and of the lattice solver inside them."""

    step_s: list[float] = field(default_factory=list)
    solver_s: list[float] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)

    @property
    def rules_s(self) -> list[float]:
        """Everything but the solver: sensing, cell rules, moves, secretion, matrix, metrics."""
        return [s - v for s, v in zip(self.step_s, self.solver_s, strict=True)]


def time_model_steps(
    model: Any, repeats: int, warmup: int = 1, budget_s: float | None = None
) -> StepTimes:
    """Time ``repeats`` steps of ``model`` (after ``warmup`` steps), the solver separately.

    The solver is timed by wrapping ``model.stepper`` (synchronized before and after). With
    ``budget_s``, stops after at least 3 timed steps once the timed steps exceed it.
    """
    sync = model.backend.synchronize
    orig = model.stepper
    solver: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        sync()
        t0 = time.perf_counter()
        out = orig(*args, **kwargs)
        sync()
        solver.append(time.perf_counter() - t0)
        return out

    model.stepper = timed
    res = StepTimes()
    try:
        for _ in range(warmup):
            model.step()
        solver.clear()
        spent = 0.0
        for i in range(repeats):
            res.cells.append(n_cells(model))
            sync()
            t0 = time.perf_counter()
            model.step()
            sync()
            res.step_s.append(time.perf_counter() - t0)
            spent += res.step_s[-1]
            if budget_s is not None and i + 1 >= 3 and spent > budget_s:
                break
    finally:
        model.stepper = orig
    res.solver_s = list(solver)
    return res


def build_model(overrides: Sequence[str], backend: str) -> tuple[Any, float]:
    """A JointModel for ``overrides`` on ``backend`` and its build time (s)."""
    from abm.config import compose
    from abm.model import JointModel

    cfg = compose([*overrides, f"backend={backend}"])
    t0 = time.perf_counter()
    model = JointModel(cfg)
    return model, time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB; monotone over the process)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def bench_cells(
    case: CellCase, backend: str, repeats: int, warmup: int = 1, budget_s: float | None = None
) -> dict[str, Any]:
    """Whole model steps (all five cell types, lattice solver, metrics) for one case."""
    model, build_s = build_model(case.overrides, backend)
    t = time_model_steps(model, repeats, warmup=warmup, budget_s=budget_s)
    cells = median(t.cells)
    step, solver, rules = median(t.step_s), median(t.solver_s), median(t.rules_s)
    out = {
        "what": "cells",
        "case": case.name,
        "backend": backend,
        "overrides": list(case.overrides),
        "shape": list(model.shape),
        "voxels": int(model.n_voxels),
        "n_cells": cells,
        "target_cells": case.target_cells,
        "cells_by_type": {p.name: p.n for p in model.pops.values()},
        "build_s": build_s,
        "warmup_steps": warmup,
        "timed_steps": len(t.step_s),
        "times_s": t.step_s,
        "solver_times_s": t.solver_s,
        "median_s": step,
        "solver_s": solver,
        "rules_s": rules,
        "solver_fraction": solver / step,
        "steps_per_s": 1.0 / step,
        "cell_steps_per_s": cells / step,
        "rules_cell_steps_per_s": cells / rules,
        "throughput": cells / step / 1e6,
        "unit": "M cell-steps/s",
        "process_peak_rss_mb": peak_rss_mb(),
    }
    del model
    return out


# ------------------------------------------------------------------------------------ children
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'\\nmaxrss_kb={kb}', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_measured(
    cmd: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``cmd`` in a subprocess: wall time (s), peak RSS (MB) and exit code.

    Peak RSS comes from ``/usr/bin/time -v`` when present, else from a one-child wrapper's
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (exact for that one child).
    """
    env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    if Path("/usr/bin/time").exists():
        full, method = ["/usr/bin/time", "-v", *cmd], "/usr/bin/time -v"
    else:
        full = [sys.executable, "-c", _RUSAGE_WRAPPER, *cmd]
        method = "getrusage(RUSAGE_CHILDREN).ru_maxrss"
    t0 = time.perf_counter()
    res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr) or re.search(
        r"maxrss_kb=(\d+)", res.stderr
    )
    return {
        "command": list(cmd),
        "returncode": res.returncode,
        "wall_s": wall,
        "peak_rss_mb": int(m.group(1)) / 1024.0 if m else None,
        "rss_method": method,
        "stderr_tail": res.stderr[-2000:],
    }


def abm_run_measured(overrides: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """``python -m abm OVERRIDES`` (abm-run, observers and files included) in a temporary run
    folder, measured by :func:`run_measured`."""
    with tempfile.TemporaryDirectory(prefix="abm-bench-") as tmp:
        cmd = [sys.executable, "-m", "abm", *overrides, f"hydra.run.dir={tmp}/run"]
        out = run_measured(cmd, timeout=timeout)
    out["overrides"] = list(overrides)
    return out


# ------------------------------------------------------------------------------------ machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state() -> dict[str, Any]:
    """HEAD and the tracked files that differ from it (what the timings ran on)."""

    def git(*args: str) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return [line for line in out.splitlines() if line.strip()]

    try:
        return {
            "commit": git("rev-parse", "HEAD")[0],
            "dirty_files": git("diff", "--name-only", "HEAD"),
        }
    except Exception:  # not a checkout, no git: nothing to say
        return {}


def machine_info(backends: Sequence[str] = ()) -> dict[str, Any]:
    """CPU model, cores, load, numpy + BLAS (threadpoolctl), GPU (if cupy is used), git."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        from threadpoolctl import threadpool_info

        keys = (
            "user_api",
            "internal_api",
            "version",
            "num_threads",
            "threading_layer",
            "architecture",
        )
        info["threadpools"] = [{k: p.get(k) for k in keys} for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    if "cupy" in backends:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info["gpu"] = {
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "memory_gb": props["totalGlobalMem"] / 1e9,
            "cupy": cupy.__version__,
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "driver": cupy.cuda.runtime.driverGetVersion(),
        }
    else:
        info["gpu"] = None
    info["git"] = _git_state()
    return info


# ------------------------------------------------------------------------------------ reports
def add_speedups(results: list[dict[str, Any]], baseline: str = "numpy") -> list[dict[str, Any]]:
    """Throughput ratio of each non-baseline backend to ``baseline`` per (what, case)."""
    base = {(r["what"], r["case"]): r for r in results if r["backend"] == baseline}
    out = []
    for r in results:
        b = base.get((r["what"], r["case"]))
        if r["backend"] != baseline and b is not None:
            ratio = r["throughput"] / b["throughput"]
            r["speedup_vs_" + baseline] = ratio
            out.append(
                {
                    "what": r["what"],
                    "case": r["case"],
                    "backend": r["backend"],
                    "baseline": baseline,
                    "ratio": ratio,
                }
            )
    return out


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of medians (one row per what/case/backend)."""
    head = ("what", "case", "backend", "size", "ms/step", "throughput", "unit", "solver", "speedup")
    rows = []
    for r in results:
        size = (
            f"{r['voxel_field_updates']:.3g} vox*F"
            if r["what"] == "lattice"
            else f"{r['n_cells']:.3g} cells"
        )
        solver = f"{100 * r['solver_fraction']:.0f}%" if "solver_fraction" in r else "-"
        speed = next((f"x{v:.2f}" for k, v in r.items() if k.startswith("speedup_vs_")), "-")
        rows.append(
            (
                r["what"],
                r["case"],
                r["backend"],
                size,
                f"{1e3 * r['median_s']:.2f}",
                f"{r['throughput']:.3g}",
                r["unit"],
                solver,
                speed,
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def plot(results: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Bar chart of throughput by case and backend (one panel per kind), speedups on bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [w for w in WHAT if any(r["what"] == w for r in results)]
    backends = list(dict.fromkeys(r["backend"] for r in results))
    fig, axes = plt.subplots(
        1, max(1, len(kinds)), figsize=(5.5 * max(1, len(kinds)), 4.2), squeeze=False
    )
    width = 0.8 / max(1, len(backends))
    for ax, kind in zip(axes[0], kinds, strict=False):
        rs = [r for r in results if r["what"] == kind]
        cases = list(dict.fromkeys(r["case"] for r in rs))
        for j, be in enumerate(backends):
            xs, ys, labels = [], [], []
            for i, case in enumerate(cases):
                r = next((r for r in rs if r["case"] == case and r["backend"] == be), None)
                if r is None:
                    continue
                xs.append(i + (j - (len(backends) - 1) / 2) * width)
                ys.append(r["throughput"])
                sp = r.get("speedup_vs_numpy")
                labels.append(f"x{sp:.1f}" if sp is not None else f"{r['throughput']:.3g}")
            bars = ax.bar(xs, ys, width, label=be)
            ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
        ax.set_xticks(range(len(cases)), cases)
        vals = [r["throughput"] for r in rs]
        if max(vals) > 30 * min(vals):  # log only where the range needs it (bars from 0 else)
            ax.set_yscale("log")
        ax.set_ylabel(rs[0]["unit"] if rs else "")
        ax.set_title(f"{kind}: median of repeats (higher is better)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_benchmarks(
    backends: Sequence[str],
    what: Sequence[str],
    sizes: str,
    repeats: int,
    progress: Callable[[str], None] = lambda s: None,
) -> list[dict[str, Any]]:
    """Every requested case on every backend, in order lattice then cells."""
    results: list[dict[str, Any]] = []
    if "lattice" in what:
        for case, shape in LATTICE_SHAPES[sizes].items():
            for be in backends:
                progress(f"lattice {case} {be}")
                results.append(bench_lattice(case, shape, be, repeats))
    if "cells" in what:
        for case in CELL_CASES[sizes].values():
            for be in backends:
                progress(f"cells {case.name} {be}")
                results.append(bench_cells(case, be, repeats))
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abm-bench",
        description="CPU vs GPU benchmark table: the lattice solver alone (one LOD step, "
        "float32, 8 fields, layered per-voxel D) and whole model steps (all five cell types). "
        "Writes bench.json and bench.png into --out and prints a table of medians.",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        default=None,
        metavar="NAME",
        help="numpy and/or cupy (default: numpy, plus cupy if a CUDA device answers)",
    )
    p.add_argument(
        "--what",
        nargs="+",
        choices=WHAT,
        default=list(WHAT),
        help="lattice: solver only (M voxel-field updates/s); cells: model steps "
        "(cell-steps/s). Default: both",
    )
    p.add_argument(
        "--sizes",
        choices=SIZES,
        default="full",
        help="small: tiny cases (seconds, for tests); full: 2D 512^2 / 3D 128^3 "
        "lattices and ~1e4-1e6 cells (default)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed steps per case (median)")
    p.add_argument("--out", default="outputs/bench", help="folder for bench.json, bench.png")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-bench``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        if args.repeats < 1:
            raise BenchError(f"--repeats must be >= 1 (got {args.repeats})")
        backends = check_backends(args.backends) if args.backends else default_backends()
    except BenchError as exc:
        print(f"abm-bench: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    results = run_benchmarks(
        backends,
        args.what,
        args.sizes,
        args.repeats,
        progress=lambda s: print(f"... {s}", file=sys.stderr, flush=True),
    )
    speedups = add_speedups(results) if "numpy" in backends and len(backends) > 1 else []
    report = {
        "schema": SCHEMA,
        "started": started,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "settings": {
            "backends": backends,
            "what": list(args.what),
            "sizes": args.sizes,
            "repeats": args.repeats,
            "statistic": "median",
        },
        "machine": machine_info(backends),
        "results": results,
        "speedups": speedups,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out / "bench.png")
    print(format_table(results))
    print(
        f"(medians of {args.repeats} repeats; wrote {out / 'bench.json'} and {out / 'bench.png'})"
    )


if __name__ == "__main__":
    main()
