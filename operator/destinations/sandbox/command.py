"""`destinations sandbox`: run a local Kubernetes API server and kubelet in the foreground.

The API server is the embedded emulator (the default: no binaries needed) or, with
`--control-plane real`, a real etcd, kube-apiserver and kube-controller-manager (KUBEBUILDER_ASSETS
or the build of `hack/controlplane/build.sh`). It writes a kubeconfig once the server listens, prints
one line saying so, and runs until SIGINT or SIGTERM, when it stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from destinations import DEFAULT_IMAGE

from ._controlplane import ControlPlaneError
from ._real import RealSandboxServer
from ._sandbox import SandboxConfig, SandboxServer, default_crds_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write the kubeconfig for the sandbox"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (127.0.0.1; default: any free port)"
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="inject faults, e.g. error=0.05,conflict=0.02,latency=20ms@0.1,drop-watch=0.01,seed=1; "
        "user=NAME (repeatable) limits them to that caller",
    )
    parser.add_argument(
        "--request-log", type=Path, default=None, help="append every API request as a JSON line to this file"
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="the image whose pods run as local processes")
    default_crds = default_crds_dir()
    parser.add_argument(
        "--crds",
        type=Path,
        default=default_crds,
        help=f"directory of CRD manifests to install at start-up (default: {default_crds or 'none'})",
    )
    parser.add_argument(
        "--control-plane",
        choices=("embedded", "real"),
        default="embedded",
        help="embedded: the built-in API emulator (default); real: etcd, kube-apiserver and "
        "kube-controller-manager from KUBEBUILDER_ASSETS or `bash scripts/setup.sh`",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where pods' files and logs go (default: a temporary directory)",
    )


async def _serve(config: SandboxConfig) -> None:
    server = RealSandboxServer(config) if config.control_plane == "real" else SandboxServer(config)
    await server.start()
    print(
        f"Sandbox API server ({config.control_plane}) listening on {server.url}; "
        f"kubeconfig written to {config.kubeconfig_path}",
        flush=True,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    try:
        config = SandboxConfig(
            port=args.port,
            kubeconfig_path=args.kubeconfig,
            crds_dir=args.crds,
            install_repo_crds=False,
            faults=args.faults,
            image=args.image,
            request_log_path=args.request_log,
            workdir=args.workdir,
            control_plane=args.control_plane,
        )
        if args.control_plane == "real" and (args.faults or args.request_log or args.port):
            raise ValueError(
                "--faults, --request-log and --port need --control-plane embedded (a real API server "
                "picks its own port and writes an audit log instead)"
            )
        asyncio.run(_serve(config))
    except (ValueError, ControlPlaneError) as error:
        print(f"destinations sandbox: {error}")
        return 2
    return 0
