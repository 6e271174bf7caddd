"""`python -m tinyllm ...` runs the command line (see tinyllm/cli.py)."""

import sys

from tinyllm.cli import main

sys.exit(main())
