"""abm-replay in subprocesses: every bad flag or output path is one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from abm.runner import simulate
from tests.abm.fake_model import FakeModel, fake_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    simulate(fake_config(), out, model_cls=FakeModel)
    return out


def replay(*args):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "abm.cli.replay", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--every", "0"], "--every 0: must be an integer >= 1"),
        (["--every", "-2"], "--every -2: must be an integer >= 1"),
        (["--dpi", "0"], "--dpi 0: must be an integer in [8, 600]"),
        (["--dpi", "100000"], "--dpi 100000: must be an integer in [8, 600]"),
        (["--fps", "-5"], "--fps -5: must be a finite number"),
        (["--fps", "nan"], "--fps nan: must be a finite number"),
        (["--fps", "500"], "--fps 500: a GIF holds at most 100 frames per second"),
    ],
)
def test_bad_flags_are_one_line_exit_2(run_dir, tmp_path, args, words):
    out = tmp_path / "m.gif"
    res = replay(run_dir, "--out", out, *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"abm-replay: error: {words}"), lines
    assert "Traceback" not in res.stderr and not out.exists()


@pytest.mark.parametrize(
    ("out", "extra", "words"),
    [
        ("FILE/sub/out.mp4", [], "cannot create a folder there: {FILE} is a file"),
        ("FILE/sub/frames", [], "cannot create a folder there: {FILE} is a file"),
        ("FILE/s.png", ["--summary"], "cannot create a folder there: {FILE} is a file"),
        ("FILE", [], "is a file; PNG frames need a folder"),
        ("DIR", ["--summary"], "is a folder; give a file name"),
    ],
)
def test_unwritable_out_is_one_line_exit_2(run_dir, tmp_path, out, extra, words):
    regular = tmp_path / "a_file"  # tests run as root: a path below a regular file is unwritable
    regular.write_text("not a folder")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    out = out.replace("FILE", str(regular)).replace("DIR", str(folder))
    res = replay(run_dir, "--out", out, "--dpi", 16, *extra)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"abm-replay: error: --out {out}: "), lines
    assert words.format(FILE=regular) in lines[0] and "Traceback" not in res.stderr
    assert regular.read_text() == "not a folder" and list(folder.iterdir()) == []


def test_out_in_new_folders_is_written(run_dir, tmp_path):
    out = tmp_path / "new" / "deeper" / "m.gif"
    res = replay(run_dir, "--out", out, "--dpi", 16, "--every", 2, "--fps", 100)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0
    summary = tmp_path / "other" / "s.png"
    res = replay(run_dir, "--summary", "--out", summary)
    assert res.returncode == 0, res.stderr
    assert summary.stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--html", "--summary"], "--html and --summary: choose one"),
        (["--html", "--interactive"], "--html and --interactive: choose one"),
        (["--html", "--out", "OUT/page.mp4"], "--out OUT/page.mp4: --html writes one page"),
        (["--html", "--max-mb", "2"], "--max-mb 2: must be a finite number >= 10"),
        (["--html", "--max-mb", "nan"], "--max-mb nan: must be a finite number >= 10"),
        (["--html", "--every", "0"], "--every 0: must be an integer >= 1"),
        (["--html", "--out", "FILE/sub/page.html"], "cannot create a folder there"),
        (["--html", "--field", "nope"], "no field 'nope'"),
    ],
)
def test_bad_html_flags_are_one_line_exit_2(run_dir, tmp_path, args, words):
    regular = tmp_path / "a_file"
    regular.write_text("x")
    args = [a.replace("OUT", str(tmp_path)).replace("FILE", str(regular)) for a in args]
    words = words.replace("OUT", str(tmp_path))
    res = replay(run_dir, *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-replay: error: "), lines
    assert words in lines[0] and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == [regular] and not (run_dir / "run.html").exists()


def test_html_page_is_written(run_dir, tmp_path):
    out = tmp_path / "new" / "page.html"
    res = replay(run_dir, "--html", "--out", out, "--every", 2, "--field", "TNF")
    assert res.returncode == 0, res.stderr
    assert "3 plots)" in res.stderr and "thinned: every 2-th snapshot" in res.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script src=" not in page
    assert "TNF" in page and 3e6 < out.stat().st_size < 30e6
    res = replay(run_dir, "--html")  # default: run.html in the run folder
    assert res.returncode == 0, res.stderr
    assert (run_dir / "run.html").is_file()
    (run_dir / "run.html").unlink()
