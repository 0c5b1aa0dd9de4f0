"""The operator's API client (controller/kube.py): every failure is a `KubeError`, which its callers
(the start-up list, the runners) retry; anything else would escape them."""

from __future__ import annotations

import asyncio

import kopf
import pytest
from aiohttp import web

from destinations.controller.kube import KubeClient, KubeError


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "'<html><body>502 Bad Gateway</body></html>'"),
        ('["not", "an", "object"]', """'["not", "an", "object"]'"""),
    ],
)
def test_an_answer_that_is_no_json_object_is_a_kube_error(body: str, shown: str) -> None:
    """A proxy in front of the API server can answer 200 with its own page."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    async def main() -> KubeError:
        app = web.Application()
        app.router.add_get("/apis/destinations.dev/v1/destinationjobs", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        kube = KubeClient(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
        try:
            with pytest.raises(KubeError) as raised:
                async for _ in kube.list_pages("/apis/destinations.dev/v1/destinationjobs"):
                    pass
            return raised.value
        finally:
            await kube.close()
            await runner.cleanup()

    error = asyncio.run(main())
    assert error.status == 200
    assert str(error) == (
        "HTTP 200: GET /apis/destinations.dev/v1/destinationjobs?limit=500: "
        f"the answer is no JSON object: {shown}"
    )
