"""`python -m destinations.plugin`: the same as `kubectl-destinations` (the krew shim runs this)."""

from destinations.plugin.main import entry_point

entry_point()
