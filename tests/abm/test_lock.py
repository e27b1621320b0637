"""The run-folder lock: one writer per folder, stale locks taken over, readers can ask."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from abm.errors import RunFolderError
from abm.lock import LOCK_FILE, Holder, acquire, live_holder, make_folder, writer_alive

# A process that takes the lock of argv[1], says so, and holds it until killed.
HOLDER = """
import sys, time
from abm.lock import acquire
lock = acquire(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""

# A process that tries to take the lock of argv[1] once and reports the outcome.
CONTENDER = """
import sys, time
from abm.errors import RunFolderError
from abm.lock import acquire
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together
try:
    lock = acquire(sys.argv[1])
except RunFolderError:
    print("refused", flush=True)
else:
    print("got", flush=True)
    time.sleep(1.5)  # hold it while the others try
    lock.release()
"""


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True, **kw)


def _dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(folder, **fields) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "then", **fields}
    (folder / LOCK_FILE).write_text(json.dumps(holder))


def test_lock_names_its_holder_and_goes_away(tmp_path):
    folder = tmp_path / "a" / "b"
    assert not writer_alive(folder)
    with acquire(folder) as lock:
        assert folder.is_dir()
        held = json.loads((folder / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert held["started"].endswith("+00:00")
        assert writer_alive(folder) and writer_alive(folder / "run.h5")
        assert live_holder(folder) == lock.holder
        (folder / "run.h5").write_bytes(b"x")
    assert not (folder / LOCK_FILE).exists()
    assert not writer_alive(folder)
    assert folder.is_dir()  # it holds a file: stays


def test_empty_folder_made_for_nothing_is_removed(tmp_path):
    folder = tmp_path / "never"
    acquire(folder).release()
    assert not folder.exists()


def test_reentrant_within_a_process(tmp_path):
    outer = acquire(tmp_path)
    inner = acquire(tmp_path)
    assert inner is outer
    inner.release()
    assert (tmp_path / LOCK_FILE).exists()  # the outer holder still has it
    outer.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_live_holder_in_another_process_refuses(tmp_path):
    folder = tmp_path / "run"
    proc = _python(HOLDER, str(folder), stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError) as err:
            acquire(folder)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{folder}: another run is writing here")
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg
        assert f"kill {proc.pid}" in msg and "choose another folder" in msg
        assert writer_alive(folder)
        with pytest.raises(RunFolderError, match=r"still going.*then resume it"):
            acquire(folder, resuming=True)
    finally:
        proc.kill()
        proc.wait()
    # SIGKILL left the lock behind: stale now, so readers see no writer and it is taken over
    assert (folder / LOCK_FILE).exists() and not writer_alive(folder)
    with acquire(folder) as lock:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid


def test_stale_lock_is_reported_and_taken_over(tmp_path, caplog):
    _write_lock(tmp_path)
    dead = json.loads((tmp_path / LOCK_FILE).read_text())["pid"]
    assert not writer_alive(tmp_path)
    with caplog.at_level(logging.WARNING, logger="abm.lock"), acquire(tmp_path) as lock:
        assert Holder.parse((tmp_path / LOCK_FILE).read_bytes()) == lock.holder
    assert f"took over a stale lock (pid {dead} on host" in caplog.text
    assert "no longer running" in caplog.text


def test_recycled_pid_or_reboot_is_stale(tmp_path):
    me = Holder.me()
    if me.proc_start is None or me.boot_id is None:
        pytest.skip("no /proc here to tell a recycled pid")
    _write_lock(tmp_path, pid=os.getpid(), proc_start=me.proc_start + 1)  # same pid, other start
    assert not writer_alive(tmp_path)
    _write_lock(tmp_path, pid=os.getpid(), boot_id="another-boot")
    assert not writer_alive(tmp_path)
    _write_lock(tmp_path, pid=os.getpid(), proc_start=me.proc_start, boot_id=me.boot_id)
    assert writer_alive(tmp_path)


def test_lock_from_another_host_refuses(tmp_path):
    _write_lock(tmp_path, host="node-elsewhere", pid=1)
    assert writer_alive(tmp_path)  # cannot be checked from here: counts as live
    with pytest.raises(RunFolderError) as err:
        acquire(tmp_path)
    msg = str(err.value)
    assert "pid 1 on host node-elsewhere" in msg and "another host" in msg
    assert f"delete {tmp_path / LOCK_FILE}" in msg


def test_half_written_lock_waits_then_counts_as_stale(tmp_path):
    lock_file = tmp_path / LOCK_FILE
    lock_file.write_bytes(b"")  # created, not yet written
    assert writer_alive(tmp_path)
    with pytest.raises(RunFolderError, match="unreadable"):
        acquire(tmp_path, wait_s=0.2)
    old = time.time() - 60
    os.utime(lock_file, (old, old))  # left like that a minute ago: its writer died
    assert not writer_alive(tmp_path)
    with acquire(tmp_path) as lock:
        assert lock.took_over is not None


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_racing_processes_one_wins(tmp_path, stale):
    folder = tmp_path / "run"
    if stale:
        _write_lock(folder)
    go = str(time.time() + 1.5)
    procs = [_python(CONTENDER, str(folder), go, stdout=subprocess.PIPE) for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["got", "refused", "refused", "refused"]
    assert not (folder / LOCK_FILE).exists()
    assert not (folder / ".abm.lock.takeover").exists()


def test_release_leaves_a_lock_that_is_not_ours(tmp_path):
    lock = acquire(tmp_path)
    _write_lock(tmp_path, host="node-elsewhere")
    lock.release()
    assert (tmp_path / LOCK_FILE).exists()


def test_unusable_folder_is_one_line(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RunFolderError) as err:
        acquire(tmp_path / "file.txt" / "sub")
    msg = str(err.value)
    assert msg == (
        f"{tmp_path}/file.txt/sub: cannot create the run folder ({tmp_path}/file.txt is a file, "
        "not a folder); choose a folder you can write"
    )
    with pytest.raises(RunFolderError, match=r"file\.txt is a file, not a folder"):
        make_folder(tmp_path / "file.txt")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match=r"permission denied in .*ro\)"):
            acquire(ro / "sub")
        with pytest.raises(RunFolderError, match="cannot write in the run folder"):
            acquire(ro)
    finally:
        ro.chmod(0o700)
