"""numpywren2: tiled dense linear algebra on elastic, stateless compute."""

from . import kernels, programs

__all__ = ["kernels", "programs"]
__version__ = "0.1.0"
