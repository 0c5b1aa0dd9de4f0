"""Bounded memory: a million records stream through the worker without its memory growing with them.

The worker process is measured by the kernel (`wait4`'s peak resident set size of that one child),
so neither the test process nor other children count.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.providers.servers import FakeServer, Request, Response
from tests.worker.conftest import WorkerPod, file_endpoint, job

RECORDS = 1_000_000
#: Holding these 1M records as dicts takes about 550 MiB. The streaming worker peaks at 65-90 MiB
#: (up to ~145 MiB seen on a loaded machine, where allocation timing differs); 200 MiB leaves room for
#: that while still failing loudly if records pile up.
PEAK_RSS_BOUND_MIB = 200


def generate(path: Path, count: int) -> None:
    with path.open("w") as stream:
        for start in range(0, count, 10_000):
            stream.write(
                "".join(
                    f'{{"id":{i},"email":"user{i}@example.com","plan":"pro"}}\n'
                    for i in range(start, start + 10_000)
                )
            )


class CountingReceiver:
    def __init__(self) -> None:
        self.records = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.records += request.body.count(b'"email"')
        return Response(200)


def test_a_million_records_stream_in_bounded_memory(pod: WorkerPod) -> None:
    generate(pod.source_dir / "big.jsonl", RECORDS)
    with FakeServer(receiver := CountingReceiver()) as server:
        process = pod.popen(
            job(
                "webhook",
                "export",
                {"url": server.url, "batchSize": 2000, "concurrency": 4},
                source=file_endpoint("big.jsonl"),
            ),
            extra=["--batch-size", "2000"],
            measured=False,
        )
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None and stderr is not None
        # Drain the pipes while waiting so the child never blocks on a full pipe.
        output: list[str] = []
        drain = threading.Thread(target=lambda: output.append(stdout.read() + stderr.read()))
        drain.start()
        _, status, usage = os.wait4(process.pid, 0)
        drain.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    peak_mib = usage.ru_maxrss / 1024  # kilobytes on Linux
    done = pod.finished(process.returncode, "".join(output), "")
    print(f"worker peak RSS: {peak_mib:.1f} MiB for {RECORDS} records")
    assert done.exit_code == 0, done.report
    assert done.records["read"] == RECORDS and receiver.records == RECORDS
    assert peak_mib < PEAK_RSS_BOUND_MIB
