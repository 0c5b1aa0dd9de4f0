"""The operator (`destinations operator`): kopf watches feeding the lifecycle core, and its actions.

Layout: `operator` (the `Operator` object and `run()`), `handlers` (kopf wiring and settings), `jobs`
(one runner per DestinationJob), `authorizations` (health, usedBy, the in-use finalizer), `observing`
and `health` (pure readings of the world), `pods` (render a sync pod, read its result), `kube` (the
few API calls the operator makes), `patches`, `capacity`, `metrics`, `settings`, `command` (the CLI).

    from destinations.controller import Operator, OperatorSettings
    await Operator(OperatorSettings(namespaces=("demo",))).run(stop_flag=stop)
"""

from destinations.controller.operator import Operator
from destinations.controller.settings import OperatorSettings

__all__ = ["Operator", "OperatorSettings"]
