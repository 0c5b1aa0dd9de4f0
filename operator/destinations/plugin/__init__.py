"""`kubectl destinations`: a kubectl plugin that does what the product's Jobs screen does.

One module per command (`providers`, `status`, `logs`, `run`, `dry_run`, `pause`, `resume`, `new`,
`report`), each a thin layer over the cluster's own objects: every action is a field or an annotation
the operator already understands. `kube` holds the connection (the official `kubernetes` client) and
turns API errors into sentences; `output` the tables, colours and `-o yaml|json`; `waiting` what
`--wait` shares. Commands and the RBAC each needs: docs/kubectl-plugin.md.
"""

from destinations.plugin.main import main

__all__ = ["main"]
