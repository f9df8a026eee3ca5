"""The core: what an executor needs to turn a stored job into work, and nothing above it.

- ``backends``: the tile store, task queue and state store contracts, their implementations, and the
  URL openers (``open_store``, ``open_queue``, ``open_state``);
- ``jobspec``: the job description stored with every job (``JobSpec``) and the tile-key layout;
- ``outcome``: the one rule for a job's end (``job_outcome``), from what the state store says;
- ``kernels``: the built-in tile kernels;
- ``programs``: the algorithms, as LAmbdaPACK programs;
- ``tiling``: block-size and grid arithmetic.

The core imports only ``lambdapack`` (and numpy, scipy, the client libraries of the backends).  The
executor and the provisioner import it; the client (``numpywren2.client``) sits above all of them.
``tests/test_layers.py`` keeps it so.
"""
