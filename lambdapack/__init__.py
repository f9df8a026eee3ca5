"""LAmbdaPACK: tiled linear algebra programs and their implicit task graphs.

A kernel is a function over numpy tiles; a program is a loop nest of kernel calls over
tile spaces.  Binding the integer parameters gives the implicit task graph, which the
reference interpreter (or the numpywren2 runtime) executes:

>>> import numpy as np
>>> import lambdapack as lp
>>> @lp.kernel
... def inc(x):
...     return x + 1
>>> inc(np.zeros(2))
array([1., 1.])
>>> chain = lp.Program.from_source('''
... def chain(A: lp.Matrix, B: lp.Matrix, N: int):
...     for i in range(N):
...         if i == 0:
...             B[i] = inc(A[i])
...         else:
...             B[i] = inc(B[i - 1])
... ''', {"inc": inc})
>>> dag = chain.bind(N=3)
>>> dag.num_tasks(), list(dag.starters())
(3, [inc@L5(i=0)])
>>> t = dag.task(1, (1,)); t, dag.parents(t), dag.children(t)
(inc@L7(i=1), [inc@L5(i=0)], [inc@L7(i=2)])
>>> lp.interpret(dag, {"A": {(0,): np.zeros(2)}})["B"][(2,)]
array([3., 3.])
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
