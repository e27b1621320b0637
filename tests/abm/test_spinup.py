"""Spin-up (abm/spinup.py): the cache entry is computed once and reused; a branched run equals
a continuous run (untreated spin-up days, then the therapy) bit for bit after the branch;
therapy.day counts from the branch; a branched run resumes bit-identically; a damaged entry is
recomputed; spin-up 0 changes nothing."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from abm import spinup
from abm.config import compose
from abm.observers.checkpoint import read_checkpoint
from abm.runner import simulate
from tests.abm.observers.test_checkpoint import _assert_same_run
from tests.conftest import SMALL

DT = 10.0  # SMALL: sim.dt_min=10


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(spinup.CACHE_ENV, str(folder))
    return folder


def _cfg(*extra, spin=0.25, days=0.25):
    return compose(
        [*SMALL, f"sim.spinup_days={spin}", f"sim.days={days}", "therapy=msc", "therapy.day=0.1",
         *extra],
        warn=False,
    )  # fmt: skip


def _entries(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_entry_is_written_once_and_reused(cache, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="abm.spinup")
    entry = spinup.ensure_entry(_cfg())
    assert entry.parent == cache and entry.name == spinup.spinup_key(_cfg())
    assert any("spin-up: 0.25 days -> " + str(entry) in r.message for r in caplog.records)
    info = json.loads((entry / spinup.ENTRY_INFO).read_text())
    assert info["steps"] == 36 and info["days"] == 0.25
    curve = pd.read_csv(entry / spinup.ENTRY_METRICS)
    assert len(curve) == 37 and curve["time_min"].iloc[-1] == 360.0
    stamp = (entry / spinup.ENTRY_CHECKPOINT).stat().st_mtime_ns

    def no_compute(*_a, **_k):
        raise AssertionError("the spin-up was computed again")

    monkeypatch.setattr(spinup, "_compute", no_compute)
    caplog.clear()
    # other arms (therapy, its day, the run's length) share the entry of one seed
    for extra in [(), ("therapy=none",), ("therapy.day=2",), ("therapy.prelicensed=true",)]:
        assert spinup.ensure_entry(_cfg(*extra, days=1.0)) == entry
    assert [r.message for r in caplog.records] == [f"spin-up: reusing {entry}"] * 4
    assert (entry / spinup.ENTRY_CHECKPOINT).stat().st_mtime_ns == stamp
    assert _entries(cache) == [entry.name]


def test_keys_follow_the_spinup_inputs_only():
    key = spinup.spinup_key(_cfg())
    assert spinup.spinup_key(_cfg("therapy=none", "perturb.deplete_macrophages=true")) == key
    assert spinup.spinup_key(_cfg("output.snapshot_every_min=60", days=3)) == key
    # no MSC exists before the branch: MSC parameters share the entry
    assert spinup.spinup_key(_cfg("biology.msc.half_life_days=3", "therapy.dose=1e8")) == key
    for other in ["seed=1", "scenario=healthy", "patient.severity=2", "sim.field_substeps=2",
                  "biology.hill_n=2", "lattice.vessel_density=0.03"]:  # fmt: skip
        assert spinup.spinup_key(_cfg(other)) != key, other
    assert spinup.spinup_key(_cfg(spin=0.5)) != key


def test_two_seeds_get_two_entries(cache):
    a = spinup.ensure_entry(_cfg("seed=1", spin=0.05))
    b = spinup.ensure_entry(_cfg("seed=2", spin=0.05))
    assert a != b and _entries(cache) == sorted([a.name, b.name])
    ua = read_checkpoint(a / spinup.ENTRY_CHECKPOINT).state["u"]
    ub = read_checkpoint(b / spinup.ENTRY_CHECKPOINT).state["u"]
    assert not np.array_equal(ua, ub)


def _state(model):
    return model.model_state()


def _same_model(a, b):
    sa, sb = _state(a), _state(b)
    for name in ("u", "agg", "col2"):
        np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name))
    assert (sa.steps, sa.next_id) == (sb.steps, sb.next_id)
    assert sa.cells.keys() == sb.cells.keys()
    for kind, cols in sa.cells.items():
        for col, arr in cols.items():
            np.testing.assert_array_equal(arr, sb.cells[kind][col], err_msg=f"{kind}/{col}")


def test_branched_run_equals_a_continuous_run(cache):
    from abm.model import JointModel

    branched = spinup.start_model(_cfg())  # 0.25 d untreated, then MSCs on day 0.1 after it
    assert (branched.step0, branched.steps, branched.time_min) == (36, 36, 0.0)
    assert len(branched.metrics) == 1 and branched.metrics["time_min"].iloc[0] == 0.0
    branched.run()
    continuous = JointModel(_cfg("therapy.day=0.35", spin=0, days=0.5))
    continuous.run()
    assert branched.steps == continuous.steps == 72
    _same_model(branched, continuous)
    after = continuous.metrics.iloc[36:].reset_index(drop=True)
    after["time_min"] -= 36 * DT
    pd.testing.assert_frame_equal(branched.metrics.reset_index(drop=True), after,
                                  check_exact=True)  # fmt: skip
    # therapy.day counts from the branch: injected on the first step at or after 144 min
    m = branched.metrics
    first = m["time_min"][m["msc_alive"] > 0].iloc[0]
    assert first == 150.0 and m["msc_alive"].iloc[0] == 0


def test_resume_of_a_branched_run_is_bit_identical(cache, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="abm.spinup")
    out = ["output.snapshot_every_min=60", "output.checkpoint_every_min=60"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    simulate(_cfg(*out), whole)
    simulate(_cfg(*out, days=0.125), part)
    resume = [f"resume={part / 'run.h5'}", "sim.days=0.25"]
    simulate(_cfg(*out, *resume), part, resume)
    _assert_same_run(whole, part)
    csv = pd.read_csv(whole / "metrics.csv")
    assert csv["time_min"].iloc[0] == 0.0 and csv["time_min"].iloc[-1] == 360.0
    assert read_checkpoint(part / "checkpoint.h5").state["step0"] == 36
    spin_lines = [r.message for r in caplog.records
                  if r.message.startswith("spin-up") and "computing" not in r.message]  # fmt: skip
    assert len(spin_lines) == 2 and "reusing" in spin_lines[1]  # the resume spins nothing up


@pytest.mark.parametrize("spoil", ["truncate", "json", "metrics"])
def test_a_damaged_entry_is_recomputed(cache, caplog, spoil):
    cfg = _cfg(spin=0.05)
    entry = spinup.ensure_entry(cfg)
    good = read_checkpoint(entry / spinup.ENTRY_CHECKPOINT).state
    if spoil == "truncate":
        path = entry / spinup.ENTRY_CHECKPOINT
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif spoil == "json":
        (entry / spinup.ENTRY_INFO).write_text("{not json")
    else:
        (entry / spinup.ENTRY_METRICS).unlink()
    key = spinup.spinup_key(cfg)
    assert spinup.check_entry(entry, key) is not None
    caplog.set_level(logging.INFO, logger="abm.spinup")
    assert spinup.ensure_entry(cfg) == entry
    assert any(r.levelno == logging.WARNING and "damaged" in r.message for r in caplog.records)
    assert spinup.check_entry(entry, key) is None
    again = read_checkpoint(entry / spinup.ENTRY_CHECKPOINT).state
    assert again.keys() == good.keys()
    for k, v in good.items():
        np.testing.assert_array_equal(again[k], v)
    assert _entries(cache) == [entry.name]  # no temporary or trash folder left


def test_a_copy_published_second_keeps_the_first(cache):
    cfg = _cfg(spin=0.05)
    entry = spinup.ensure_entry(cfg)
    stamp = (entry / spinup.ENTRY_INFO).stat().st_mtime_ns
    from abm.model import JointModel

    tmp = spinup._compute(cfg, cache, spinup.spinup_key(cfg), JointModel)
    spinup._publish(tmp, entry, spinup.spinup_key(cfg))
    assert not tmp.exists() and (entry / spinup.ENTRY_INFO).stat().st_mtime_ns == stamp


def test_no_spinup_builds_the_model_as_before(cache):
    from abm.model import JointModel

    cfg = _cfg(spin=0)
    model = spinup.start_model(cfg)
    assert (model.step0, model.steps, model.time_min) == (0, 0, 0.0)
    assert not cache.exists()
    _same_model(model, JointModel(cfg))


def test_source_sha_follows_model_code_not_reports(tmp_path):
    """Editing a rule or kernel changes the spin-up key's code hash; editing a report or
    launcher package (abm/trial, abm/cli, ...) does not."""
    from abm.spinup import tree_sha

    for rel in ("abm/model.py", "abm/cells/msc.py", "abm/trial/report.py", "abm/cli/run.py",
                "kernels/diffusion.py"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    ref = tree_sha(tmp_path)
    for rel in ("abm/trial/report.py", "abm/cli/run.py"):
        (tmp_path / rel).write_text("x = 2\n")
        assert tree_sha(tmp_path) == ref, rel
    for rel in ("abm/model.py", "abm/cells/msc.py", "kernels/diffusion.py"):
        (tmp_path / rel).write_text("x = 3\n")
        new = tree_sha(tmp_path)
        assert new != ref, rel
        ref = new
