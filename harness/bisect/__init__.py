"""``compat-matrix bisect``: the first release of a package where the selected scenarios' behaviour changed.

The modules, in the order a bisection uses them:

* ``releases``: the package's releases on the index uv reads (the provisioning's own index options), and the
  candidates strictly between the good and the bad release;
* ``steps``: one release measured as an environment of its own through ``harness.pipeline.EnvironmentPipeline``
  (uv's cache, the cell cache, venvs under ``.nox/_bisect`` removed afterwards unless ``--keep``);
* ``decide``: whether a release differs from the good one (the verdict's drift rules), the flaky gate and the search;
* ``report``: the answer as a validated JSON document and a short table;
* ``arguments``: its options; ``command``: the command line (``python -m harness bisect``, ``./cm -s bisect -- ...``).
"""
