"""One-line error classes of oa-abm (a contract: users and front ends catch these by name).

Every message is one line that names the offending key, file or value and what would be valid;
the command-line front ends print it as ``<command>: error: <message>`` and exit 2 for bad input
(``abm-run`` also: 1 a failed simulation, 74 a run file it could not write, 128 + the signal
when interrupted). Raised at every stage of the data flow (config, backend, run files, the step
loop, benchmarks), defined here so that no stage has to import another to catch them.
"""

from __future__ import annotations

import signal


class ConfigError(ValueError):
    """A bad config value: the message is one line naming the key."""


class BackendError(RuntimeError):
    """The requested array backend is not usable here (one line saying why)."""


class RunFileError(ValueError):
    """A run file is missing, damaged or not an oa-abm run (one line naming the file)."""


class ResumeError(ValueError):
    """A run cannot be resumed from the given file (one line naming the file and why)."""


class SimulationError(RuntimeError):
    """The state went bad (non-finite or negative field): one line naming field, place, step."""


class BenchError(RuntimeError):
    """A benchmark cannot run as asked (one line naming the option)."""


class RunFolderError(ValueError):
    """A run folder cannot be used: not writable, another run writing it, or holding another
    run (one line naming the folder, what is wrong and how to proceed)."""


class LockError(RunFolderError):
    """Another live process holds the run folder's lock (one line naming the folder, the holder's
    pid, host and start, and what to do)."""


class OutputError(OSError):
    """A run file could not be written mid-run (disk full, quota, I/O error): one line naming
    the file and the reason; the frames and metrics flushed before it stay readable."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a run (after its files were flushed and closed).

    A KeyboardInterrupt, so code that handles Ctrl-C handles SIGTERM alike; ``signum`` is the
    signal and ``exit_code`` the conventional ``128 + signum`` (130 for SIGINT, 143 SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        try:
            self.signal_name = signal.Signals(self.signum).name
        except ValueError:
            self.signal_name = f"signal {self.signum}"
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
