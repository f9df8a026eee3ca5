"""Gates for kernels: ``numpywren2.testing.gates`` (shared with the soak in ``bench/soak.py``)."""

from numpywren2.testing.gates import (
    ENV,
    PATIENCE,
    Gates,
    gated_add,
    gated_double,
    gated_double_marked,
    pass_gate,
)

__all__ = ["ENV", "PATIENCE", "Gates", "gated_add", "gated_double", "gated_double_marked", "pass_gate"]
