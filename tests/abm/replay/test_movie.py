"""Movies, PNG frames, the slider viewer and the summary figure, all headless (Agg)."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import imageio.v3 as iio
import numpy as np
import pytest

from abm.replay import load_run
from abm.replay.frames import FramePlot, View
from abm.replay.movie import ffmpeg_available, write_movie
from abm.replay.plots import summary_figure
from abm.replay.viewer import SliderViewer
from abm.runner import simulate
from abm.units import MIN_PER_DAY
from tests.abm.fake_model import FakeModel, fake_config


@pytest.fixture(scope="module")
def run2d(tmp_path_factory):
    out = tmp_path_factory.mktemp("run2d")
    simulate(fake_config(), out, model_cls=FakeModel)
    with load_run(out) as r:
        yield r


@pytest.fixture(scope="module")
def run3d(tmp_path_factory):
    out = tmp_path_factory.mktemp("run3d")
    simulate(fake_config(**{"lattice.shape": [8, 6, 4], "sim.days": 0.1}), out, model_cls=FakeModel)
    with load_run(out) as r:
        yield r


def test_gif_and_png_frames(run2d, tmp_path):
    gif = write_movie(run2d, "IL1b", tmp_path / "m.gif", dpi=16, progress=False)
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == run2d.n_frames and frames.shape[1:3] == (64, 160)
    pngs = write_movie(run2d, "TNF", tmp_path / "frames", dpi=16, every=3, progress=False)
    assert sorted(p.name for p in pngs.iterdir()) == [
        "frame_0000.png",
        "frame_0003.png",
        "frame_0006.png",
    ]


@pytest.mark.skipif(not ffmpeg_available(), reason="no ffmpeg")
def test_mp4(run2d, tmp_path):
    mp4 = write_movie(run2d, "AGG", tmp_path / "m.mp4", dpi=16, progress=False)
    assert mp4.suffix == ".mp4" and mp4.stat().st_size > 0


def test_mp4_falls_back_to_gif_without_ffmpeg(run2d, tmp_path, monkeypatch):
    monkeypatch.setattr("abm.replay.movie.ffmpeg_available", lambda: False)
    out = write_movie(run2d, "AGG", tmp_path / "m.mp4", dpi=16, progress=False)
    assert out == tmp_path / "m.gif" and out.is_file()


def test_frame_plot_shows_the_frame(run2d):
    plot = FramePlot(run2d, "COL2")
    plot.show(-1)
    assert plot.frame == run2d.n_frames - 1
    np.testing.assert_array_equal(plot.image.get_array(), run2d.field("COL2", -1))
    n_shown = sum(len(sc.get_offsets()) for sc in plot.scatter.values())
    assert n_shown == len(run2d.cells(-1))
    assert plot.cursors[0].get_xdata()[0] == pytest.approx(run2d.time_min[-1] / MIN_PER_DAY)


def test_slider_viewer_moves_and_saves(run2d, tmp_path):
    viewer = SliderViewer(run2d, "IL1b")
    viewer.goto(3)
    assert viewer.frame == 3
    np.testing.assert_array_equal(viewer.plot.image.get_array(), run2d.field("IL1b", 3))
    viewer.slider.set_val(5)
    assert viewer.frame == 5
    viewer.save(tmp_path / "viewer.png", dpi=30)
    assert (tmp_path / "viewer.png").stat().st_size > 0


def test_3d_slice_and_projection(run3d, tmp_path):
    plot = FramePlot(run3d, "IL1b", View(axis=2, index=1))
    np.testing.assert_array_equal(plot.image.get_array(), run3d.field("IL1b", 0)[:, :, 1])
    cells = run3d.cells(0)
    n_shown = sum(len(sc.get_offsets()) for sc in plot.scatter.values())
    assert n_shown == int((cells["z"] == 1).sum())
    proj = FramePlot(run3d, "IL1b", View(axis=0, project="max"))
    np.testing.assert_array_equal(proj.image.get_array(), run3d.field("IL1b", 0).max(axis=0))
    with pytest.raises(ValueError, match="--slice 9"):
        View(axis=2, index=9).resolve(run3d.shape)
    write_movie(run3d, "TNF", tmp_path / "m3.gif", view=View(project="max"), dpi=16, progress=False)


def test_summary_figure(run2d, tmp_path):
    fig = summary_figure(run2d, tmp_path / "summary.png", dpi=40)
    assert (tmp_path / "summary.png").is_file()
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        "cytokines in synovial fluid",
        "phenotypes",
        "cartilage matrix",
    ]
    assert all(ax.lines for ax in fig.axes[:3])


def _replay(*args):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "abm.cli.replay", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_abm_replay_cli(run2d, tmp_path):
    folder = run2d.path.parent
    res = _replay(folder, "--field", "TNF", "--out", tmp_path / "t.gif", "--dpi", 16)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "t.gif").is_file()
    res = _replay(run2d.path, "--out", tmp_path / "frames", "--dpi", 16, "--every", 2)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 4
    res = _replay(folder, "--summary", "--out", tmp_path / "s.png")
    assert res.returncode == 0 and (tmp_path / "s.png").is_file()
    for bad, words in [
        (["--field", "NOPE"], "no field 'NOPE' (fields: IL1b, TNF, AGG, COL2)"),
        (["--slice", "3"], None),
    ]:
        res = _replay(folder, *bad, "--out", tmp_path / "x.gif", "--dpi", 16)
        if words is None:  # --slice is ignored on a 2D run
            assert res.returncode == 0, res.stderr
            continue
        assert res.returncode == 2
        assert res.stderr.strip() == f"abm-replay: error: {folder / 'run.h5'}: {words}"
    res = _replay(tmp_path / "nowhere")
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr
