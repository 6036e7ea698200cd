"""``python -m harness.worker``: the worker loop, started by the supervisor inside an environment."""

import sys

from harness.worker.loop import main

sys.exit(main())
