"""``python -m sirnn``: the same command line as ``sirnn``."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
