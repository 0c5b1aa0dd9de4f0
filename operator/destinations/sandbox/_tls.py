"""A throw-away certificate authority and serving certificate for the sandbox's HTTPS listener.

kubectl (client-go) only sends a kubeconfig's credentials over TLS; over plain http it talks
anonymously. The sandbox needs to know who calls (admission reports the caller's userInfo), so it
serves HTTPS with a certificate for 127.0.0.1 signed by a CA generated per process, and puts the CA
into the kubeconfig it writes.
"""

from __future__ import annotations

import functools

from destinations.certificates import ServingCertificate, make_serving_certificate


@functools.cache
def certificates() -> ServingCertificate:
    """One CA and serving certificate per process: generating them is cheap but not free."""
    return make_serving_certificate(
        ["destinations-sandbox", "localhost", "127.0.0.1"], ca_name="destinations-sandbox-ca"
    )
