"""`python -m lmcore` is the `lmcore` command."""

import sys

from lmcore.cli import main

sys.exit(main())
