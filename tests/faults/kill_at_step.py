"""An executor that SIGKILLs itself at one step of the task protocol, once per job.

Run as ``python kill_at_step.py STEP <executor arguments>``: the executor of
``numpywren2.testing.faulty_executor`` with the fault ``kill:STEP`` (the steps and the claim of the
``killer-<job>`` file in the gate directory ``NPW_TEST_GATES`` are described there).
"""

from __future__ import annotations

import sys

from numpywren2.testing.faulty_executor import STEPS, main

__all__ = ["STEPS"]

if __name__ == "__main__":
    sys.exit(main([f"kill:{sys.argv[1]}", *sys.argv[2:]]))
