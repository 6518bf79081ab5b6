"""``python -m colorrt``: the same as the ``colorrt`` command."""

import sys

from colorrt.cli import main

sys.exit(main())
