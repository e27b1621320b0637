"""Run-folder lock: one process writes a run folder at a time, and readers can ask whether one is.

Data flow: ``abm-run`` (before Hydra touches the folder) and :func:`abm.runner.simulate` take the
lock of a run folder before writing anything in it and release it when they are done; readers
(:mod:`abm.replay`) call :func:`writer_alive` to learn whether a run is still writing there.

The lock is the file :data:`LOCK_FILE` in the run folder, created atomically
(``O_CREAT | O_EXCL``) and holding one JSON object: the holder's ``pid``, ``host`` and
``started`` (ISO 8601, UTC), its command line, and where ``/proc`` tells, the process's start
tick and the boot id (so that a recycled pid or a reboot does not pass for the holder). The
holder removes it when it releases the lock; a process killed with SIGKILL leaves it behind.

A lock whose holder is gone (this host and boot, no such process) is *stale*: it is reported in
the log and taken over. A lock held by a live process, or by a process on another host (which
cannot be checked from here), makes :func:`acquire` raise :class:`RunFolderError` with one line
naming the folder, the holder and what to do. Within one process the lock is re-entrant:
``abm-run`` takes it before Hydra starts and :func:`abm.runner.simulate` takes it again.

Imports only :mod:`abm.errors`, so any stage (the replay included) may import it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from abm.errors import LockError, RunFolderError

log = logging.getLogger(__name__)

LOCK_FILE = ".abm.lock"
TAKEOVER_FILE = ".abm.lock.takeover"  # held for the moment it takes to remove a stale lock

# A lock file is written a moment after it is created: one that stays unreadable this long was
# left half-written (disk full, a crash in between) and counts as stale; so does a takeover guard.
UNREADABLE_STALE_S = 10.0
# How long acquire() waits for a lock that is being written, or a takeover by another process.
WAIT_S = 2.0
_POLL_S = 0.05


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the lock file says."""

    pid: int
    host: str
    started: str  # ISO 8601, UTC
    command: str = ""
    proc_start: int | None = None  # start time of the process in clock ticks since boot
    boot_id: str | None = None

    @classmethod
    def me(cls) -> Holder:
        pid = os.getpid()
        return cls(
            pid=pid,
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            command=" ".join(sys.argv)[:500],
            proc_start=_proc_start(pid),
            boot_id=_boot_id(),
        )

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        """The holder in a lock file's bytes; None when they are not a complete lock."""
        try:
            d = json.loads(data.decode("utf-8"))
            return cls(
                pid=int(d["pid"]),
                host=str(d["host"]),
                started=str(d.get("started", "?")),
                command=str(d.get("command", "")),
                proc_start=None if d.get("proc_start") is None else int(d["proc_start"]),
                boot_id=None if d.get("boot_id") is None else str(d["boot_id"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=1) + "\n").encode("utf-8")

    @property
    def here(self) -> bool:
        """Whether the holder ran on this host (then its liveness can be checked)."""
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether the holder may still run: True for another host (it cannot be checked)."""
        if not self.here:
            return True
        boot = _boot_id()
        if self.boot_id and boot and self.boot_id != boot:
            return False  # the machine rebooted since
        if not _pid_alive(self.pid):
            return False
        if self.proc_start is not None:
            now = _proc_start(self.pid)
            if now is not None and now != self.proc_start:
                return False  # the pid was recycled by another process
        return True

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user
    except OSError:
        return True
    state = _proc_stat(pid)
    return state is None or state[0] != "Z"  # a zombie has finished running


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start tick) of ``pid`` from /proc; None where /proc does not tell."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _proc_start(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _read(path: Path) -> bytes | None:
    """The bytes of ``path``; None when it does not exist (any more)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return b""  # there, but unreadable: like a half-written lock


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _reason(exc: OSError) -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENAMETOOLONG: "name too long",
    }
    return reasons.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def _why_not_created(folder: Path, exc: OSError) -> str:
    """Why ``folder`` could not be made, naming the offending path."""
    if isinstance(exc, NotADirectoryError | FileExistsError):
        for p in (folder, *folder.parents):
            if p.exists() and not p.is_dir():
                return f"{p} is a file, not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        existing = next((p for p in folder.parents if p.exists()), None)
        if existing is not None:
            return f"{_reason(exc)} in {existing}"
    return _reason(exc)


def make_folder(folder: str | os.PathLike) -> bool:
    """Create the run folder ``folder`` (and its parents); True when it was created here.

    Raises :class:`RunFolderError` (one line) when it cannot be made: a file in the way, no
    permission, a read-only or full file system, an empty name.
    """
    folder = Path(folder)
    if str(folder).strip() == "":
        raise RunFolderError("the run folder is empty: give a folder for the run")
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
        return True
    except FileExistsError as exc:
        if folder.is_dir():  # made by someone else just now
            return False
        why = _why_not_created(folder, exc)
    except OSError as exc:
        why = _why_not_created(folder, exc)
    raise RunFolderError(
        f"{folder}: cannot create the run folder ({why}); choose a folder you can write"
    )


def _busy(folder: Path, holder: Holder, resuming: bool) -> LockError:
    what = "the run in this folder is still going" if resuming else "another run is writing here"
    if holder.here:
        todo = f"wait for it to end or stop it (kill {holder.pid})"
        todo += ", then resume it" if resuming else ", or choose another folder"
    else:
        todo = (
            f"it runs on another host and cannot be checked from here: if it is over, delete "
            f"{folder / LOCK_FILE}" + ("" if resuming else "; or choose another folder")
        )
    return LockError(f"{folder}: {what} ({holder.describe()}); {todo}")


class RunLock:
    """The lock of one run folder, held by this process (see :func:`acquire`).

    ``took_over`` is the holder of the stale lock it replaced, if any; ``created`` tells whether
    acquiring it created the folder (an empty folder made here is removed on release).
    """

    def __init__(self, folder: Path, created: bool) -> None:
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.created = created
        self.holder: Holder | None = None
        self.took_over: Holder | None = None
        self._depth = 0
        self._logged = False

    # -- taking -------------------------------------------------------------------------------
    def _take(self, resuming: bool, wait_s: float) -> None:
        me = Holder.me()
        data = me.to_bytes()
        deadline = time.monotonic() + wait_s
        while True:
            if self._create(data):
                self.holder = me
                return
            raw = _read(self.path)
            if raw is None:
                continue  # released just now: try again
            holder = Holder.parse(raw)
            if holder is not None and holder.alive():
                raise _busy(self.folder, holder, resuming)
            if holder is None and _age_s(self.path) < UNREADABLE_STALE_S:
                # being written right now (or left half-written a moment ago)
                if time.monotonic() > deadline:
                    raise LockError(
                        f"{self.folder}: its lock file {LOCK_FILE} is unreadable; if no run is "
                        f"writing this folder, delete {self.path} and try again"
                    )
                time.sleep(_POLL_S)
                continue
            if self._remove_stale(raw):
                self.took_over = holder or Holder(pid=-1, host="?", started="?")
                continue
            if time.monotonic() > deadline:
                raise LockError(
                    f"{self.folder}: another process is taking over its stale lock; try again, "
                    f"or delete {self.path} if no run is writing this folder"
                )
            time.sleep(_POLL_S)

    def _create(self, data: bytes) -> bool:
        """Create the lock file holding ``data``; False when one exists."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise RunFolderError(
                f"{self.folder}: cannot write in the run folder ({_reason(exc)}); choose a "
                "folder you can write"
            ) from None
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise RunFolderError(
                f"{self.folder}: cannot write in the run folder ({_reason(exc)}); choose a "
                "folder you can write"
            ) from None
        os.close(fd)
        return True

    def _remove_stale(self, raw: bytes) -> bool:
        """Remove the lock file if it still holds ``raw``; one process at a time does this."""
        guard = self.folder / TAKEOVER_FILE
        try:
            fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _age_s(guard) > UNREADABLE_STALE_S:  # left by a process that died taking over
                with contextlib.suppress(OSError):
                    guard.unlink()
            return False
        except OSError:
            return False
        os.close(fd)
        try:
            if _read(self.path) != raw:
                return False  # someone else took over first, or the holder let go
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
        finally:
            with contextlib.suppress(OSError):
                guard.unlink()

    def log_takeover(self) -> None:
        """Log (once) that a stale lock was taken over, naming its former holder."""
        if self.took_over is None or self._logged:
            return
        self._logged = True
        h = self.took_over
        who = "a half-written lock" if h.pid < 0 else f"{h.describe()}, no longer running"
        log.warning("%s: took over a stale lock (%s)", self.folder, who)

    # -- letting go ---------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._depth > 0 and self.holder is not None and self.holder.pid == os.getpid()

    def release(self) -> None:
        """Let go (the outermost release removes the lock file, if it is still ours)."""
        if self._depth > 1:
            self._depth -= 1
            return
        if self._depth == 0:
            return
        self._depth = 0
        _HELD.pop(_key(self.folder), None)
        if self.holder is None or self.holder.pid != os.getpid():
            return  # a forked child never removes its parent's lock
        raw = _read(self.path)
        if raw is not None and Holder.parse(raw) == self.holder:
            with contextlib.suppress(OSError):
                self.path.unlink()
        elif raw is not None:
            log.warning("%s: the lock file is no longer this process's; left in place", self.path)
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty: a run that never started leaves nothing

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# The locks this process holds, by the real path of their folder (re-entrancy).
_HELD: dict[str, RunLock] = {}


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def acquire(
    folder: str | os.PathLike,
    *,
    resuming: bool = False,
    log_takeover: bool = True,
    wait_s: float = WAIT_S,
) -> RunLock:
    """Take the lock of the run folder ``folder`` (creating the folder); returns the lock.

    Use as a context manager or call ``release()``. Re-entrant within a process. Raises
    :class:`RunFolderError` (one line) when the folder cannot be created or written, and its
    subclass :class:`LockError` when another process holds the lock (``resuming`` words that as
    "the run is still going"). A stale lock
    is taken over (logged now, or by :meth:`RunLock.log_takeover` with ``log_takeover=False``).
    """
    folder = Path(folder)
    held = _HELD.get(_key(folder)) if folder.is_dir() else None
    if held is not None and held.held:
        held._depth += 1
        return held
    created = make_folder(folder)
    lock = RunLock(folder, created)
    try:
        lock._take(resuming, wait_s)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    lock._depth = 1
    _HELD[_key(folder)] = lock
    if log_takeover:
        lock.log_takeover()
    return lock


def release_all() -> None:
    """Release every lock this process holds (for an exit that skips ``finally`` blocks)."""
    for lock in list(_HELD.values()):
        lock._depth = min(lock._depth, 1)
        lock.release()


def live_holder(folder: str | os.PathLike) -> Holder | None:
    """The live holder of the lock of ``folder`` (a run folder, or a file in it such as its
    ``run.h5``); else None.

    A lock being written this very moment counts as live (its holder is then unknown:
    ``Holder(pid=-1, host="?", ...)``); a stale one (holder gone) does not.
    """
    folder = Path(folder)
    if folder.is_file() or folder.suffix == ".h5":
        folder = folder.parent
    path = folder / LOCK_FILE
    raw = _read(path)
    if raw is None:
        return None
    h = Holder.parse(raw)
    if h is None:
        return Holder(pid=-1, host="?", started="?") if _age_s(path) < UNREADABLE_STALE_S else None
    return h if h.alive() else None


def writer_alive(folder: Path) -> bool:
    """Whether a process may be writing the run folder ``folder`` now.

    True when its lock is held by a live process on this host, by a process on another host
    (which cannot be checked from here), or is being created this very moment; False when there
    is no lock or its holder is gone (a killed run). A path to a file in the folder (its
    ``run.h5``) is taken as the folder. For readers: a live writer means the file grows and is
    to be opened in SWMR mode.
    """
    return live_holder(folder) is not None
