"""The provisioner: scaling policies, launchers (local processes, simulated Lambda, AWS Lambda, Dask,
Kubernetes), timelines.

``numpywren2.submit`` runs a ``Provisioner`` in the client process by default;
``python -m provisioner ...`` runs one standalone for a job submitted elsewhere.
"""

from .accounting import CostModel, executor_usage
from .dask_launcher import DaskLauncher
from .kubernetes_launcher import KubernetesLauncher
from .launchers import (
    AwsLambdaLauncher,
    ExecutorSpec,
    ExitedExecutor,
    Launcher,
    LocalProcessLauncher,
    SimulatedLambdaLauncher,
)
from .loop import Provisioner
from .policy import Observation, PoolPolicy, ProportionalPolicy, ScalingPolicy
from .settings import ProvisionerSettings

__all__ = [
    "AwsLambdaLauncher", "CostModel", "DaskLauncher", "ExecutorSpec", "ExitedExecutor", "KubernetesLauncher",
    "Launcher", "LocalProcessLauncher", "Observation", "PoolPolicy", "ProportionalPolicy", "Provisioner",
    "ProvisionerSettings", "ScalingPolicy",
    "SimulatedLambdaLauncher", "executor_usage",
]
