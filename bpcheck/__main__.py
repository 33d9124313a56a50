"""``python -m bpcheck``: the ``bpcheck`` command."""

import sys

from bpcheck.cli import main

sys.exit(main())
