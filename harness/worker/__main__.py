"""``python -m harness.worker``: the worker loop, started by the supervisor inside an environment."""

from harness.worker.loop import exit_now, main

exit_now(main())
