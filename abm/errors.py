"""One-line error classes of oa-abm (a contract: users and front ends catch these by name).

Every message is one line that names the offending key, file or value and what would be valid;
the command-line front ends print it as ``<command>: error: <message>`` and exit 2. Raised at
every stage of the data flow (config, backend, run files, the step loop, benchmarks), defined
here so that no stage has to import another to catch them.
"""

from __future__ import annotations


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
