"""The worker side of the process boundary: everything that runs inside a provisioned framework environment.

The worker loop, the scenario API, checks, determinism, record encoding, array conversion, error text, warning
capture, atomic writes and the protocol types. It imports nothing beyond the standard library and numpy (numpy
lazily), and stays importable by Python 3.9, the oldest interpreter a supported framework release may need: the
orchestrator imports it only for the protocol (``tests/test_worker_boundary.py`` holds it to that).
"""
