"""``python -m abm``: the same as ``abm-run`` (config -> run folder)."""

from abm.cli.run import main

main()
