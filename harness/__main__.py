"""``python -m harness``: the orchestrator's command line."""

import sys

from harness.cli import main

sys.exit(main())
