"""Build the krew archive of `kubectl destinations`, byte for byte reproducible, and print its sha256.

    python plugins/build_krew_archive.py [OUTPUT_DIR]   # default: dist/

The archive holds the `kubectl-destinations` shim and a LICENSE notice; entries have fixed times, owners and
modes, and gzip carries no timestamp, so the same sources always give the sha256 written in
plugins/destinations.yaml (tests/plugin/test_shipping.py rebuilds it and compares). Publish it as the
release asset the manifest's `uri` names. Krew manifests: https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIM = HERE / "kubectl-destinations"
#: The package's license (pyproject.toml: Apache-2.0), as krew asks every archive to carry one.
LICENSE = b"destinations-operator is licensed under the Apache License 2.0 (SPDX: Apache-2.0):\nhttps://www.apache.org/licenses/LICENSE-2.0\n"


def version() -> str:
    namespace: dict[str, object] = {}
    exec((ROOT / "operator" / "destinations" / "__init__.py").read_text(encoding="utf-8"), namespace)
    return str(namespace["__version__"])


def build(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, mode in (("LICENSE", LICENSE, 0o644), (SHIM.name, SHIM.read_bytes(), 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    target = output_dir / f"kubectl-destinations-v{version()}.tar.gz"
    with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        zipped.write(buffer.getvalue())
    return target


def main() -> None:
    target = build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
    print(f"{hashlib.sha256(target.read_bytes()).hexdigest()}  {target}")


if __name__ == "__main__":
    main()
