"""``python -m mlrun_magic``: see :mod:`mlrun_magic.cli`."""

import sys

from mlrun_magic.cli import main

sys.exit(main())
