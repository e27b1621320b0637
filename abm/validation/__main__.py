"""``python -m abm.validation [options]``: see :mod:`abm.validation.cli`."""

from abm.validation.cli import main

raise SystemExit(main())
