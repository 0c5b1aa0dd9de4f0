"""The sandbox: a local Kubernetes API server and kubelet for development and tests (DESIGN.md §7).

Public API:

- `Sandbox(...)`: start with `Sandbox(kubeconfig_path=...).start()` or `with Sandbox() as sandbox:`; it
  runs in a background thread and offers `url`, `kubeconfig_path`, `token`, `request_log`,
  `reset_request_log()`, `evict_pod(namespace, name)`, `set_faults(spec)`, `add_admission_hook(hook)`,
  `set_webhook_service(namespace, name, address)` (where registered admission webhooks listen),
  `apply(obj)`, `get(...)` and `stop()`.
- `SandboxServer`: the same, in the caller's asyncio loop (used by `destinations sandbox`).
- `SandboxConfig`: every option of both.
- `RequestRecord`: one entry of the request log.
- `ControlPlane`: a real etcd, kube-apiserver and kube-controller-manager on loopback (envtest-style
  `start()`/`stop()`); `SandboxConfig(control_plane="real")` runs the sandbox's kubelet against it.
- `new_control_plane(config)`: the control plane a real sandbox with that config runs, to start once
  and lend to sandboxes one after another as `SandboxConfig.real_control_plane`, rewound in between
  (`ControlPlane.checkpoint()`/`rewind()`; the test bed keeps one per test worker).

See `_volumes` for how pods' absolute paths are mapped into per-pod directories.
"""

from ._cluster import AdmissionHook, AdmissionRequest, Caller
from ._controlplane import ControlPlane, ControlPlaneError, find_binaries
from ._errors import ApiError
from ._real import new_control_plane
from ._requestlog import RequestRecord
from ._sandbox import ADMIN_USER, EmbeddedOnly, Sandbox, SandboxConfig, SandboxServer, render_kubeconfig

__all__ = [
    "ADMIN_USER",
    "AdmissionHook",
    "AdmissionRequest",
    "ApiError",
    "Caller",
    "ControlPlane",
    "ControlPlaneError",
    "EmbeddedOnly",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "find_binaries",
    "new_control_plane",
    "render_kubeconfig",
]
