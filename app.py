"""GridOps entry point: `python app.py` runs the demo, `python app.py COMMAND` one part."""
from __future__ import annotations

import sys

from dashboard.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
