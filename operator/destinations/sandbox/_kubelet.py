"""The sandbox kubelet: runs pods of the project's own image as local processes.

It plays the node's part of a pod's life: it binds new pods to its node, "pulls" the image (only the
configured image exists; any other fails with ErrImagePull, then ImagePullBackOff, as on a node that
cannot reach the registry), materialises Secret and ConfigMap volumes (see `_volumes` for how mount
paths are mapped and rewritten), starts each container's command as a process of this installation
(command[0] resolves in the directory of `sys.executable`, so `destinations` and `python` work), and
reports what happens in the pod's status: phase, conditions, containerStatuses with exit codes,
reasons and the termination message.

It honours `activeDeadlineSeconds` (DeadlineExceeded), graceful deletion (SIGTERM, then SIGKILL after
the grace period, then the final delete), restart policies, and it serves the pods' logs. Tests can
simulate a node-pressure eviction with `evict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _objects
from ._errors import ApiError, bad_request, not_found
from ._node import Lookup, NodeApi
from ._volumes import MissingSource, PodFilesystem, materialise_volume

Json = dict[str, Any]

_MESSAGE_LIMIT = 4096
_FALLBACK_LOG_LINES = 80
_FALLBACK_LOG_BYTES = 2048
_MAX_BACKOFF_SECONDS = 10.0


@dataclass
class ContainerRun:
    spec: Json
    log_path: Path
    state: Json = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Json = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    process: asyncio.subprocess.Process | None = None
    killed_by_kubelet: bool = False

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    def status(self, container_id_prefix: str) -> Json:
        status: Json = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": f"sandbox://{self.spec.get('image', '')}",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.process is not None:
            status["containerID"] = f"{container_id_prefix}{self.process.pid}"
        return status


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    filesystem: PodFilesystem
    init_containers: list[ContainerRun] = field(default_factory=list)
    containers: list[ContainerRun] = field(default_factory=list)
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    start_time: str = ""
    conditions: dict[str, Json] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""
    grace_seconds: float = 30.0
    task: asyncio.Task[None] | None = None

    def container(self, name: str) -> ContainerRun | None:
        return next((c for c in [*self.init_containers, *self.containers] if c.name == name), None)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class Kubelet:
    """Runs the pods bound to the sandbox's single node, against either backend (see `_node`)."""

    def __init__(
        self,
        api: NodeApi,
        *,
        image: str,
        workdir: Path,
        node_name: str = "sandbox-node",
        bin_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        inherit_env: bool = False,
        api_port: int = 0,
    ) -> None:
        self.api = api
        self.image = image
        self.workdir = workdir
        self.node_name = node_name
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.extra_env = dict(extra_env or {})
        self.inherit_env = inherit_env
        self.api_port = api_port
        self._runs: dict[str, PodRun] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        api.subscribe(self._on_change, self._on_graceful_delete)

    async def start(self) -> None:
        """Register with the API server (the embedded one needs nothing) and start serving pods."""
        await self.api.start(self.node_name, self.logs)

    # --- reacting to the API -----------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_change(self, kind: str, pod: Json) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        run = self._runs.get(uid)
        if kind == "DELETED":
            if run is not None:
                self._request_stop(run, "deleted", 0)
                self._spawn(self._forget(run))
            return
        if run is None and kind == "ADDED" and not (pod.get("spec") or {}).get("nodeName"):
            run = self._new_run(pod)
            self._runs[uid] = run
            run.task = self._spawn(self._run(run))

    def _on_graceful_delete(self, pod: Json) -> None:
        run = self._runs.get(pod["metadata"].get("uid", ""))
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if run is None:
            meta = pod["metadata"]
            self._spawn(self.api.delete_now(meta.get("namespace", ""), meta["name"], meta["uid"]))
        else:
            self._request_stop(run, "deleted", grace)

    def _request_stop(self, run: PodRun, reason: str, grace: float) -> None:
        if run.stop.is_set() and reason == "deleted" and run.stop_reason != "deleted":
            run.stop_reason = "deleted"
        if not run.stop.is_set():
            run.stop_reason = reason
        run.grace_seconds = min(run.grace_seconds, grace) if run.stop.is_set() else grace
        run.stop.set()
        if grace == 0:
            for container in [*run.init_containers, *run.containers]:
                self._signal(container, signal.SIGKILL)

    def _new_run(self, pod: Json) -> PodRun:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        root = self.workdir / "pods" / meta.get("namespace", "") / f"{meta['name']}-{meta['uid'][:8]}"
        run = PodRun(meta["uid"], meta.get("namespace", ""), meta["name"], PodFilesystem(root))
        logs = root / "logs"
        run.init_containers = [
            ContainerRun(c, logs / f"init-{c.get('name')}.log") for c in spec.get("initContainers") or []
        ]
        run.containers = [
            ContainerRun(c, logs / f"{c.get('name')}.log") for c in spec.get("containers") or []
        ]
        run.grace_seconds = float(spec.get("terminationGracePeriodSeconds", 30))
        return run

    # --- status ------------------------------------------------------------------------------

    def _condition(self, run: PodRun, kind: str, status: bool, reason: str = "", message: str = "") -> None:
        value = "True" if status else "False"
        previous = run.conditions.get(kind)
        if previous is not None and previous["status"] == value and previous.get("reason", "") == reason:
            return
        condition: Json = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": _objects.now(),
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        run.conditions[kind] = condition

    def _status(self, run: PodRun) -> Json:
        status: Json = {
            "phase": run.phase,
            "qosClass": "BestEffort",
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
        }
        order = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
            "DisruptionTarget",
        ]
        status["conditions"] = [run.conditions[kind] for kind in order if kind in run.conditions]
        if run.start_time:
            status["startTime"] = run.start_time
        if run.reason:
            status["reason"] = run.reason
        if run.message:
            status["message"] = run.message
        if run.phase == "Running" or any(c.process for c in run.containers):
            status["podIP"] = "127.0.0.1"
            status["podIPs"] = [{"ip": "127.0.0.1"}]
        prefix = "sandbox://"
        if run.init_containers:
            status["initContainerStatuses"] = [c.status(prefix) for c in run.init_containers]
        status["containerStatuses"] = [c.status(prefix) for c in run.containers]
        return status

    async def _publish(self, run: PodRun) -> None:
        """Write the run's state into the pod's status (retrying on conflicts with other writers)."""
        for _ in range(10):
            pod = self.api.pod(run.namespace, run.name)
            if pod is None or pod["metadata"].get("uid") != run.uid:
                return
            new = copy.deepcopy(pod)
            status = self._status(run)
            # The API server sets the QoS class at creation and refuses to have it changed.
            status["qosClass"] = (pod.get("status") or {}).get("qosClass", status["qosClass"])
            new["status"] = status
            try:
                await self.api.put_status(run.namespace, run.name, new)
                return
            except ApiError as error:
                if error.code != 409:
                    return

    async def _event(
        self, run: PodRun, reason: str, message: str, kind: str = "Normal", field_path: str = ""
    ) -> None:
        timestamp = _objects.now()
        involved: Json = {
            "kind": "Pod",
            "namespace": run.namespace,
            "name": run.name,
            "uid": run.uid,
            "apiVersion": "v1",
        }
        if field_path:
            involved["fieldPath"] = field_path
        event = {
            "metadata": {"name": f"{run.name}.{os.urandom(8).hex()}", "namespace": run.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": self.node_name},
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
        }
        await self.api.create_event(run.namespace, event)

    # --- the life of a pod -------------------------------------------------------------------

    async def _run(self, run: PodRun) -> None:
        try:
            if not await self._bind(run):
                return
            run.start_time = _objects.now()
            self._condition(run, "PodScheduled", True)
            self._condition(run, "PodReadyToStartContainers", False)
            self._condition(
                run,
                "Initialized",
                not run.init_containers,
                "" if not run.init_containers else "ContainersNotInitialized",
            )
            self._condition(run, "Ready", False, "ContainersNotReady", "containers with unready status")
            self._condition(
                run, "ContainersReady", False, "ContainersNotReady", "containers with unready status"
            )
            await self._publish(run)
            ready = await self._pull_images(run) and await self._mount(run)
            if ready and await self._run_init_containers(run):
                await self._run_containers(run)
            if run.stop_reason == "deleted":
                await self.api.delete_now(run.namespace, run.name, run.uid)
        except asyncio.CancelledError:
            self._kill_all(run)
            raise

    async def _bind(self, run: PodRun) -> bool:
        if not await self.api.bind(run.namespace, run.name, run.uid, self.node_name):
            return False
        await self._event(
            run, "Scheduled", f"Successfully assigned {run.namespace}/{run.name} to {self.node_name}"
        )
        return True

    async def _pull_images(self, run: PodRun) -> bool:
        foreign = [c for c in [*run.init_containers, *run.containers] if c.spec.get("image") != self.image]
        if not foreign:
            for container in [*run.init_containers, *run.containers]:
                image = container.spec.get("image")
                await self._event(
                    run,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    field_path=f"spec.containers{{{container.name}}}",
                )
            return True
        for container in foreign:
            image = container.spec.get("image", "")
            message = (
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull '
                f"and unpack image "
                f'"{image}": not found (the sandbox node only has {self.image})'
            )
            container.state = {"waiting": {"reason": "ErrImagePull", "message": message}}
            await self._event(run, "Failed", message, "Warning", f"spec.containers{{{container.name}}}")
        await self._publish(run)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.stop.wait(), 1.0)
            return False
        for container in foreign:
            image = container.spec.get("image", "")
            container.state = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            }
            await self._event(
                run,
                "BackOff",
                f'Back-off pulling image "{image}"',
                "Warning",
                f"spec.containers{{{container.name}}}",
            )
        await self._publish(run)
        await run.stop.wait()
        return False

    async def _mount(self, run: PodRun) -> bool:
        pod = self.api.pod(run.namespace, run.name)
        if pod is None:
            return False
        spec = pod.get("spec") or {}
        run.filesystem.fs.mkdir(parents=True, exist_ok=True)
        (run.filesystem.root / "logs").mkdir(parents=True, exist_ok=True)
        (run.filesystem.root / "home").mkdir(parents=True, exist_ok=True)
        all_containers = [*run.init_containers, *run.containers]
        reported = False
        while True:
            try:
                for volume in spec.get("volumes") or []:
                    mount_paths = sorted(
                        {
                            m["mountPath"]
                            for c in all_containers
                            for m in c.spec.get("volumeMounts") or []
                            if m.get("name") == volume.get("name")
                        }
                    )
                    lookup = await self.api.lookup(run.namespace)
                    materialise_volume(run.filesystem, volume, mount_paths, lookup)
                break
            except MissingSource as missing:
                if not reported:
                    await self._event(run, "FailedMount", str(missing), "Warning")
                    reported = True
                try:
                    await asyncio.wait_for(run.stop.wait(), 0.5)
                    return False
                except TimeoutError:
                    continue
        for container in all_containers:
            path = container.spec.get("terminationMessagePath", "/dev/termination-log")
            host = run.filesystem.add_mapping(path)
            host.parent.mkdir(parents=True, exist_ok=True)
        self._condition(run, "PodReadyToStartContainers", True)
        return True

    def _environment(self, run: PodRun, container: ContainerRun, pod: Json, lookup: Lookup) -> dict[str, str]:
        environment: dict[str, str] = dict(os.environ) if self.inherit_env else {}
        environment.update(
            {
                "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(run.filesystem.root / "home"),
                "HOSTNAME": run.name,
                "LANG": "C.UTF-8",
                "SANDBOX_POD_ROOT": str(run.filesystem.fs),
                "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(self.api_port),
            }
        )
        environment.update(self.extra_env)
        for source in container.spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                found = lookup("configmaps", source["configMapRef"].get("name", "")) or {}
                environment.update({prefix + k: str(v) for k, v in (found.get("data") or {}).items()})
            if "secretRef" in source:
                import base64

                found = lookup("secrets", source["secretRef"].get("name", "")) or {}
                environment.update(
                    {
                        prefix + k: base64.b64decode(v).decode(errors="replace")
                        for k, v in (found.get("data") or {}).items()
                    }
                )
        for variable in container.spec.get("env") or []:
            name = variable.get("name", "")
            if "value" in variable:
                environment[name] = self._expand(str(variable["value"]), environment)
            elif "valueFrom" in variable:
                value = self._value_from(variable["valueFrom"], pod, lookup)
                if value is not None:
                    environment[name] = value
        return {key: run.filesystem.rewrite(value) for key, value in environment.items()}

    @staticmethod
    def _expand(text: str, environment: dict[str, str]) -> str:
        """Kubernetes `$(VAR)` references; `$$(VAR)` escapes them."""
        return re.sub(
            r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
            lambda m: "$" if m.group(0) == "$$" else environment.get(m.group(1), m.group(0)),
            text,
        )

    def _value_from(self, source: Json, pod: Json, lookup: Any) -> str | None:
        import base64

        if "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath", "")
            meta = pod["metadata"]
            match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            if match:
                return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
            values = {
                "metadata.name": meta.get("name"),
                "metadata.namespace": meta.get("namespace"),
                "metadata.uid": meta.get("uid"),
                "spec.nodeName": self.node_name,
                "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
                "status.podIP": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
            }
            value = values.get(path)
            return None if value is None else str(value)
        if "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            secret = lookup("secrets", reference.get("name", "")) or {}
            encoded = (secret.get("data") or {}).get(reference.get("key", ""))
            return None if encoded is None else base64.b64decode(encoded).decode(errors="replace")
        if "configMapKeyRef" in source:
            reference = source["configMapKeyRef"]
            config_map = lookup("configmaps", reference.get("name", "")) or {}
            value = (config_map.get("data") or {}).get(reference.get("key", ""))
            return None if value is None else str(value)
        return None

    def _argv(self, run: PodRun, container: ContainerRun, environment: dict[str, str]) -> list[str] | None:
        command = list(container.spec.get("command") or ["destinations"])
        args = list(container.spec.get("args") or [])
        argv = [run.filesystem.rewrite(self._expand(str(part), environment)) for part in [*command, *args]]
        executable = argv[0]
        if "/" not in executable:
            candidate = self.bin_dir / executable
            if not (candidate.exists() and os.access(candidate, os.X_OK)):
                return None
            argv[0] = str(candidate)
        elif not os.access(executable, os.X_OK):
            return None
        return argv

    async def _start(self, run: PodRun, container: ContainerRun) -> bool:
        pod = self.api.pod(run.namespace, run.name)
        if pod is None:
            return False
        environment = self._environment(run, container, pod, await self.api.lookup(run.namespace))
        argv = self._argv(run, container, environment)
        if argv is None:
            executable = (container.spec.get("command") or ["destinations"])[0]
            message = (
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                f'runc create failed: unable to start container process: exec: "{executable}": '
                "executable file not found in $PATH: unknown"
            )
            moment = _objects.now()
            container.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": message,
                    "startedAt": moment,
                    "finishedAt": moment,
                }
            }
            await self._event(
                run, "Failed", f"Error: {message}", "Warning", f"spec.containers{{{container.name}}}"
            )
            return False
        working_dir = container.spec.get("workingDir")
        cwd = run.filesystem.rewrite(working_dir) if working_dir else str(run.filesystem.fs)
        if not Path(cwd).is_dir():
            cwd = str(run.filesystem.fs)
        container.log_path.parent.mkdir(parents=True, exist_ok=True)
        if container.restart_count and container.log_path.exists():
            container.log_path.replace(container.log_path.with_suffix(".previous"))
        message_path = run.filesystem.host_path(
            container.spec.get("terminationMessagePath", "/dev/termination-log")
        )
        if message_path.exists():
            message_path.unlink()
        with container.log_path.open("ab") as log:
            container.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=environment,
                cwd=cwd,
                start_new_session=True,
            )
        container.killed_by_kubelet = False
        container.started = True
        container.state = {"running": {"startedAt": _objects.now()}}
        await self._event(
            run,
            "Created",
            f"Created container {container.name}",
            field_path=f"spec.containers{{{container.name}}}",
        )
        await self._event(
            run,
            "Started",
            f"Started container {container.name}",
            field_path=f"spec.containers{{{container.name}}}",
        )
        return True

    def _termination_message(self, run: PodRun, container: ContainerRun, exit_code: int) -> str:
        path = run.filesystem.host_path(container.spec.get("terminationMessagePath", "/dev/termination-log"))
        message = ""
        if path.is_file():
            message = path.read_bytes()[:_MESSAGE_LIMIT].decode(errors="replace")
        fallback = container.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if not message and exit_code != 0 and fallback and container.log_path.exists():
            lines = container.log_path.read_bytes().splitlines()[-_FALLBACK_LOG_LINES:]
            message = b"\n".join(lines)[-_FALLBACK_LOG_BYTES:].decode(errors="replace")
        return message

    async def _wait_container(self, run: PodRun, container: ContainerRun) -> int:
        assert container.process is not None
        started_at = (container.state.get("running") or {}).get("startedAt", _objects.now())
        returncode = await container.process.wait()
        exit_code = _exit_code(returncode)
        if exit_code == 0:
            reason = "Completed"
        elif returncode == -signal.SIGKILL and not container.killed_by_kubelet:
            reason = "OOMKilled"  # killed from outside, as the kernel's OOM killer would
        else:
            reason = "Error"
        terminated: Json = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": _objects.now(),
        }
        if returncode < 0:
            terminated["signal"] = -returncode
        message = self._termination_message(run, container, exit_code)
        if message:
            terminated["message"] = message
        terminated["containerID"] = f"sandbox://{container.process.pid}"
        container.state = {"terminated": terminated}
        container.ready = False
        container.started = False
        return exit_code

    async def _run_init_containers(self, run: PodRun) -> bool:
        for container in run.init_containers:
            if run.stop.is_set():
                return False
            if not await self._start(run, container):
                run.phase = "Failed"
                await self._publish(run)
                return False
            await self._publish(run)
            waiter = asyncio.ensure_future(self._wait_container(run, container))
            stopper = asyncio.ensure_future(run.stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                await self._terminate(run, [container])
                await waiter
            stopper.cancel()
            if waiter.result() != 0 or run.stop.is_set():
                run.phase = "Failed"
                await self._finish(run)
                return False
        self._condition(run, "Initialized", True)
        return True

    def _should_restart(self, run: PodRun, exit_code: int) -> bool:
        pod = self.api.pod(run.namespace, run.name) or {}
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        return not run.stop.is_set() and (policy == "Always" or (policy == "OnFailure" and exit_code != 0))

    async def _run_containers(self, run: PodRun) -> None:
        pending: dict[asyncio.Future[Any], ContainerRun] = {}
        for container in run.containers:
            if await self._start(run, container):
                container.ready = True
                pending[asyncio.ensure_future(self._wait_container(run, container))] = container
        if not pending and not any(c.process for c in run.containers):
            run.phase = "Failed"
            await self._finish(run)
            return
        run.phase = "Running"
        self._refresh_readiness(run)
        await self._publish(run)
        deadline = self._deadline(run)
        stopper = asyncio.ensure_future(run.stop.wait())
        try:
            while pending:
                timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
                done, _ = await asyncio.wait(
                    {*pending, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # activeDeadlineSeconds passed
                    run.stop_reason, run.reason = "deadline", "DeadlineExceeded"
                    run.message = "Pod was active on the node longer than the specified deadline"
                    await self._event(run, "DeadlineExceeded", run.message, "Warning")
                    run.stop.set()
                    continue
                if stopper in done:
                    await self._terminate(run, [pending[f] for f in pending])
                    await asyncio.gather(*pending, return_exceptions=True)
                    break
                for finished in done:
                    container = pending.pop(finished)
                    exit_code = finished.result()
                    if self._should_restart(run, exit_code):
                        pending[asyncio.ensure_future(self._restart(run, container))] = container
                self._refresh_readiness(run)
                await self._publish(run)
        finally:
            stopper.cancel()
        await self._finish(run)

    async def _restart(self, run: PodRun, container: ContainerRun) -> int:
        backoff = min(_MAX_BACKOFF_SECONDS, 2.0**container.restart_count)
        container.last_state = container.state
        container.restart_count += 1
        container.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {backoff:g}s restarting failed container={container.name} "
                f"pod={run.name}_{run.namespace}",
            }
        }
        await self._publish(run)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.stop.wait(), backoff)
            return -1
        if not await self._start(run, container):
            return 128
        container.ready = True
        self._refresh_readiness(run)
        await self._publish(run)
        return await self._wait_container(run, container)

    def _refresh_readiness(self, run: PodRun) -> None:
        unready = [c.name for c in run.containers if not c.ready]
        if unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            self._condition(run, "ContainersReady", False, "ContainersNotReady", message)
            self._condition(run, "Ready", False, "ContainersNotReady", message)
        else:
            self._condition(run, "ContainersReady", True)
            self._condition(run, "Ready", True)

    def _deadline(self, run: PodRun) -> float | None:
        pod = self.api.pod(run.namespace, run.name) or {}
        seconds = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        return None if seconds is None else asyncio.get_running_loop().time() + float(seconds)

    async def _finish(self, run: PodRun) -> None:
        exit_codes = [(c.state.get("terminated") or {}).get("exitCode", 1) for c in run.containers]
        if run.stop_reason in ("deadline", "evicted"):
            run.phase = "Failed"
        elif run.phase != "Failed" or run.stop_reason == "deleted":
            run.phase = "Succeeded" if exit_codes and all(code == 0 for code in exit_codes) else "Failed"
        for container in run.containers:
            container.ready = False
        self._condition(run, "ContainersReady", False, "PodCompleted")
        self._condition(run, "Ready", False, "PodCompleted")
        await self._publish(run)

    def _signal(self, container: ContainerRun, signum: int) -> None:
        process = container.process
        if process is None or process.returncode is not None:
            return
        container.killed_by_kubelet = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    async def _terminate(self, run: PodRun, containers: list[ContainerRun]) -> None:
        """SIGTERM, then SIGKILL once the grace period is over, as the kubelet stops containers."""
        for container in containers:
            await self._event(
                run,
                "Killing",
                f"Stopping container {container.name}",
                field_path=f"spec.containers{{{container.name}}}",
            )
            self._signal(container, signal.SIGTERM if run.grace_seconds > 0 else signal.SIGKILL)
        processes = [c.process for c in containers if c.process is not None and c.process.returncode is None]
        if not processes:
            return
        waiting = asyncio.gather(*(p.wait() for p in processes))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), run.grace_seconds if run.grace_seconds > 0 else 5)
        except TimeoutError:
            for container in containers:
                self._signal(container, signal.SIGKILL)
            await waiting

    def _kill_all(self, run: PodRun) -> None:
        for container in [*run.init_containers, *run.containers]:
            self._signal(container, signal.SIGKILL)

    async def _forget(self, run: PodRun) -> None:
        if run.task is not None and not run.task.done():
            try:
                await asyncio.wait_for(asyncio.shield(run.task), 10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                run.task.cancel()
        self._runs.pop(run.uid, None)
        await asyncio.get_running_loop().run_in_executor(None, run.filesystem.remove)

    # --- public: eviction, logs, shutdown -----------------------------------------------------

    async def evict(
        self, namespace: str, name: str, message: str = "The node was low on resource: memory. "
    ) -> None:
        """Evict a pod the way a node under pressure does: kill it, mark it Failed with reason Evicted."""
        pod = self.api.pod(namespace, name)
        if pod is None:
            raise not_found("pods", "", name)
        run = self._runs.get(pod["metadata"]["uid"])
        if run is None:
            raise bad_request(f"pod {namespace}/{name} is not running on the sandbox node")
        run.reason, run.message = "Evicted", message
        self._condition(run, "DisruptionTarget", True, "TerminationByKubelet", message)
        await self._event(run, "Evicted", message, "Warning")
        self._request_stop(run, "evicted", 0)
        if run.task is not None:
            await asyncio.shield(run.task)
        for container in run.containers:
            terminated = container.state.get("terminated")
            if terminated is not None:
                terminated.update(exitCode=137, reason="Error")
                terminated.pop("signal", None)
        run.phase = "Failed"
        await self._publish(run)

    async def logs(self, namespace: str, name: str, query: dict[str, str]) -> AsyncIterator[bytes]:
        pod = self.api.pod(namespace, name)
        if pod is None:
            raise not_found("pods", "", name)
        run = self._runs.get(pod["metadata"]["uid"])
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        wanted = query.get("container")
        if not wanted:
            if len(containers) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(map(str, containers))}]"
                )
            wanted = str(containers[0])
        container = run.container(wanted) if run is not None else None
        if container is None:
            if wanted not in containers:
                raise bad_request(f"container {wanted} is not valid for pod {name}")
            raise bad_request(f'container "{wanted}" in pod "{name}" is waiting to start: ContainerCreating')
        path = (
            container.log_path.with_suffix(".previous")
            if query.get("previous") in ("true", "1")
            else container.log_path
        )
        if not path.exists():
            reason = (container.state.get("waiting") or {}).get("reason", "ContainerCreating")
            raise bad_request(f'container "{wanted}" in pod "{name}" is waiting to start: {reason}')
        follow = query.get("follow") in ("true", "1")
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
        return self._read_log(path, container, follow, tail, limit)

    async def _read_log(
        self, path: Path, container: ContainerRun, follow: bool, tail: int | None, limit: int | None
    ) -> AsyncIterator[bytes]:
        data = path.read_bytes()
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
        position = path.stat().st_size
        sent = 0
        if limit is not None:
            data = data[:limit]
        if data:
            sent += len(data)
            yield data
        while follow and (limit is None or sent < limit):
            process = container.process
            running = process is not None and process.returncode is None
            size = path.stat().st_size if path.exists() else position
            if size > position:
                with path.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read(size - position)
                position = size
                if limit is not None:
                    chunk = chunk[: limit - sent]
                sent += len(chunk)
                yield chunk
                continue
            if not running:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for run in list(self._runs.values()):
            self._kill_all(run)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for run in list(self._runs.values()):
            for container in [*run.init_containers, *run.containers]:
                if container.process is not None and container.process.returncode is None:
                    await container.process.wait()
            run.filesystem.remove()
        self._runs.clear()
        await self.api.stop()
