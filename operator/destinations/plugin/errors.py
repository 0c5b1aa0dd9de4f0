"""The plugin's errors: each one is a sentence a user can act on, printed without a traceback.

`main()` prints `error: <sentence>` on stderr and exits with the error's `exit_code`, as kubectl does
for API errors (exit 1).
"""

from __future__ import annotations


class PluginError(Exception):
    """A failure the user can act on; `str(error)` is the whole message."""

    exit_code = 1


class UsageError(PluginError):
    """The command line asks for something impossible (a missing flag without a terminal, a bad value)."""

    exit_code = 2


class PermissionDenied(PluginError):
    """The API server answered 403 Forbidden: the caller's RBAC lacks `verb` on `resource`.

    The sentence names the verb, the resource (`destinationjobs.destinations.dev`), the namespace and the
    `kubectl auth can-i` line that checks it; docs/kubectl-plugin.md lists what each command needs.
    """

    def __init__(
        self, verb: str, resource: str, namespace: str | None, purpose: str, user: str | None
    ) -> None:
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        where = f' in namespace "{namespace}"' if namespace else " at cluster scope"
        who = f'user "{user}"' if user else "you"
        can_i = f"kubectl auth can-i {verb} {resource}" + (f" -n {namespace}" if namespace else " -A")
        super().__init__(
            f"permission denied: {who} may not {verb} {resource}{where}, which is needed to {purpose}. "
            f"Ask a cluster admin for that permission (docs/kubectl-plugin.md lists what each command "
            f"needs); check it with `{can_i}`."
        )


class NotFound(PluginError):
    """The object does not exist (404)."""


class Unreachable(PluginError):
    """No kubeconfig, an unknown context, or the API server could not be reached."""


class TimedOut(PluginError):
    """`--wait` ran out of time before the operator handled the request."""
