"""LAmbdaPACK: tiled linear algebra programs and their implicit task graphs.

>>> import lambdapack as lp
>>> @lp.kernel
... def inc(x):
...     return x + 1
"""

from .bound import BoundProgram
from .errors import CompileError
from .functions import ceil, floor, log2
from .interpreter import InterpretError, interpret
from .program import Kernel, Matrix, Program, kernel, program, scratch
from .task import Task

__all__ = [
    "BoundProgram", "CompileError", "InterpretError", "Kernel", "Matrix", "Program", "Task",
    "ceil", "floor", "interpret", "kernel", "log2", "program", "scratch",
]
