"""The HTML pages (abm-sweep-report, abm-replay --html) render in a real browser.

Each page is opened from its file in headless Chromium (Debian's, driven by playwright's sync
API; nothing is downloaded) and checked by :func:`check_page`: no console error, no page error,
no request leaving the file (plotly.js is embedded), and every plotly graph drawn (a
``.js-plotly-plot`` holding an SVG ``.main-svg``), as many as the writer says it made. The
checker itself is tested on broken pages first. The browser tests skip, with the reason, when
no Chromium is installed or playwright cannot start it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from abm.replay.html import DEFAULT_MAX_MB, PLOTLY_JS_MB, block_mean, plan
from abm.runner import simulate
from tests.abm.cli.test_sweep_report import TINY, fake_sweep
from tests.abm.fake_model import FakeModel, fake_config

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLOTS_DRAWN = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(d => d.querySelector('svg.main-svg')).length"""
FIELD_STATE = """() => { const gd = document.getElementById('field');
    let s = 0; for (const row of gd.calcdata[0][0].z) for (const v of row) s += v;
    return {sum: s, active: gd.layout.sliders[0].active, title: gd.layout.title.text}; }"""
LOCAL = ("file:", "data:", "blob:", "about:")


def chromium() -> str | None:
    path = "/usr/bin/chromium"
    return path if os.path.exists(path) else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium (/usr/bin/chromium or chromium on PATH): pages not rendered")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    except Exception as exc:  # playwright's Error: a browser it cannot drive
        pw.stop()
        pytest.skip(f"playwright cannot launch {exe}: {str(exc).splitlines()[0]}")
    yield b
    b.close()
    pw.stop()


def check_page(browser, path: Path, n_plots: int, timeout_ms: int = 30_000):
    """Open ``path``; assert no error and ``n_plots`` drawn graphs; return the open page."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: (
            problems.append(f"request leaves the file: {r.url}")
            if not r.url.startswith(LOCAL)
            else None
        ),
    )
    page.goto(path.resolve().as_uri(), wait_until="load")
    try:
        page.wait_for_function(f"() => ({PLOTS_DRAWN})() >= {n_plots}", timeout=timeout_ms)
    except Exception as exc:  # playwright's TimeoutError
        drawn = page.evaluate(PLOTS_DRAWN)
        raise AssertionError(f"{path.name}: {drawn} of {n_plots} plots drawn; {problems}") from exc
    page.wait_for_timeout(200)  # errors thrown while the last graph settles
    drawn = page.evaluate(PLOTS_DRAWN)
    assert drawn == n_plots, f"{path.name}: {drawn} plots drawn, expected {n_plots}"
    assert problems == [], problems
    return page


# -- the checker catches broken pages ------------------------------------------------------------
def _plotly_page(tmp_path: Path, name: str, body: str) -> Path:
    from abm.replay.html import plotly_head

    path = tmp_path / name
    path.write_text(f"<!DOCTYPE html><html><head>{plotly_head()}</head><body>{body}</body></html>")
    return path


GRAPH = "<div id='g{i}'></div><script>Plotly.newPlot('g{i}', [{{y: [1, 3, 2]}}]);</script>"


def test_checker_passes_a_good_page(browser, tmp_path):
    path = _plotly_page(tmp_path, "good.html", GRAPH.format(i=0) + GRAPH.format(i=1))
    check_page(browser, path, 2).close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (GRAPH.format(i=0) + "<script>notAFunction();</script>", "notAFunction"),
        (GRAPH.format(i=0) + "<script>console.error('broken data');</script>", "broken data"),
        (
            GRAPH.format(i=0) + "<script src='https://cdn.example.invalid/x.js'></script>",
            "request leaves the file",
        ),
        (
            "<div id='g0'></div><script>Plotly.newPlot('g0', [{y: [1]}]);</script>"
            "<div id='g1'></div><script>Plotly.newPlot('g1', undefinedData);</script>",
            "1 of 2 plots drawn",
        ),
    ],
)
def test_checker_catches_broken_pages(browser, tmp_path, body, words):
    path = _plotly_page(tmp_path, "broken.html", body)
    with pytest.raises(AssertionError, match=words):
        check_page(browser, path, 2 if "1 of 2" in words else 1, timeout_ms=3_000)


# -- sweep report ------------------------------------------------------------------------------
def test_sweep_report_page(browser, tmp_path):
    from abm.cli.sweep_report import main
    from abm.sweep.report import gather, n_plots

    fake_sweep(tmp_path, doses=(1e6, 1e7), seeds=(0, 1, 2), failed=[(1e7, 0)])
    main([str(tmp_path)])
    data = gather(tmp_path)
    assert n_plots(data) == 2  # readouts by therapy.dose, time courses
    page = check_page(browser, tmp_path / "sweep_report.html", 2)
    text = page.inner_text("body")
    assert "1 of 6 jobs did not complete" in text and "SimulationError" in text
    # the readouts figure: one error bar per dose and metric, with the interval of the table
    bars = page.evaluate("""() => document.getElementById('readouts-0').data
        .filter(t => t.error_y && t.error_y.array).map(t => t.x.length)""")
    assert bars == [2] * len(data.metrics)
    page.close()


def test_all_failed_page(browser, tmp_path):
    from abm.cli.sweep_report import main

    fake_sweep(tmp_path, doses=(1e6,), seeds=(0, 1), failed=[(1e6, 0), (1e6, 1)])
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    page = check_page(browser, tmp_path / "sweep_report.html", 0)
    assert "No job completed" in page.inner_text("body")
    page.close()


# -- replay page --------------------------------------------------------------------------------
def _replay_html(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "abm.cli.replay", str(run_dir), "--html", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


def _slider_moves_frames(page) -> None:
    first = page.evaluate(FIELD_STATE)
    assert first["active"] == 0 and "snapshot 1 of" in first["title"]
    rail = page.locator("#field .slider-rail-rect")
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.995, box["y"] + box["height"] / 2)
    steps = page.evaluate("() => document.getElementById('field').layout.sliders[0].steps.length")
    page.wait_for_function(  # the animation to the last snapshot has been drawn
        f"() => document.getElementById('field').layout.title.text.includes('snapshot {steps} of')"
    )
    page.wait_for_timeout(100)
    last = page.evaluate(FIELD_STATE)
    assert last["active"] == steps - 1
    assert last["sum"] != first["sum"] and last["title"] != first["title"]
    page.evaluate("""() => Plotly.animate('field', ['1'], {mode: 'immediate',
        frame: {duration: 0, redraw: true}, transition: {duration: 0}})""")
    page.wait_for_function(
        "() => document.getElementById('field').layout.title.text.includes('snapshot 2 of')"
    )
    assert page.evaluate(FIELD_STATE)["sum"] not in (first["sum"], last["sum"])


@pytest.mark.parametrize("shape", [[12, 8], [8, 6, 4]], ids=["2d", "3d"])
def test_replay_page_fake_run(browser, tmp_path, shape):
    run_dir = tmp_path / "run"
    simulate(fake_config(**{"lattice.shape": shape}), run_dir, model_cls=FakeModel)
    res = _replay_html(run_dir)
    assert res.returncode == 0, res.stderr
    out = run_dir / "run.html"
    assert "3 plots)" in res.stderr and out.stat().st_size < 30e6
    page = check_page(browser, out, 3)
    text = page.inner_text("body")
    assert "lattice.shape" in text and "Thinned" not in text
    if len(shape) == 3:
        assert "slice 2 along axis 2" in page.evaluate(FIELD_STATE)["title"]
    _slider_moves_frames(page)
    page.close()


def test_real_sweep_pages(browser, tmp_path):
    """A real 2-job sweep: its report page, and the page of one of its runs."""
    from abm.cli.sweep_report import main

    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "abm",
        "-m",
        *TINY,
        "output.snapshot_every_min=10",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    main([str(sweep)])
    page = check_page(browser, sweep / "sweep_report.html", 2)  # readouts over seeds + courses
    assert "Swept: seed (2 values)" in page.inner_text("body")
    page.close()
    job = next(p for p in sorted(sweep.iterdir()) if (p / "run.h5").is_file())
    res = _replay_html(job, "--field", "IL6", "--out", str(tmp_path / "page" / "il6.html"))
    assert res.returncode == 0, res.stderr
    page = check_page(browser, tmp_path / "page" / "il6.html", 3)
    assert "therapy.dose" in page.inner_text("body")
    _slider_moves_frames(page)
    page.close()


# -- size of the replay page ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_frames", "shape", "every"),
    [
        (29, (193, 256), 1),
        (361, (193, 256), 1),
        (2000, (193, 256), 1),
        (50, (2000, 3000), 1),
        (5, (20000, 20000), 1),
        (361, (193, 256), 4),
        (1, (10, 10), 1),
    ],
)
def test_plan_keeps_the_page_small(n_frames, shape, every):
    thin = plan(n_frames, shape, every=every)
    budget = (DEFAULT_MAX_MB - PLOTLY_JS_MB) * 1e6
    assert thin.frame_bytes <= budget
    assert thin.frames[0] == 0 and thin.frames == sorted(set(thin.frames))
    assert max(np.ceil(np.asarray(shape) / thin.block)) <= 400
    if n_frames == 29:  # the default 7-day run fits whole
        assert thin.frames == list(range(29)) and thin.block == 1 and thin.notes == []
    if n_frames >= 361 and every == 1:
        assert thin.frames[-1] == n_frames - 1 and "snapshots shown" in thin.notes[-1]
    if every > 1:
        assert set(thin.frames) <= set(range(0, n_frames, every))
        assert "--every 4" in thin.notes[0]
    if shape[0] >= 2000:
        assert any("resolution" in note for note in thin.notes)


def test_block_mean():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    b = block_mean(a, 2)
    assert b.shape == (2, 3) and b.dtype == np.float32
    assert b[0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4)
    assert b[1, 2] == pytest.approx((14 + 19) / 2)  # a partial block at the edge
    assert (block_mean(a, 1) == a).all()


def test_a_large_run_is_thinned_below_max_mb(tmp_path):
    """The default lattice with 37 snapshots: 17 MB whole; under --max-mb 10 it is thinned."""
    run_dir = tmp_path / "run"
    cfg = fake_config(**{"lattice.shape": [193, 256], "output.snapshot_every_min": 10.0})
    simulate(cfg, run_dir, model_cls=FakeModel)
    res = _replay_html(run_dir, "--max-mb", "10")
    assert res.returncode == 0, res.stderr
    size = (run_dir / "run.html").stat().st_size
    assert 5e6 < size < 10e6
    assert "thinned: 30 of 37 snapshots shown" in res.stderr
    assert "Thinned: 30 of 37 snapshots shown" in (run_dir / "run.html").read_text()
