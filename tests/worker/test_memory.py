"""Bounded memory: a million records stream through the worker without its memory growing with them.

The worker process is measured by the kernel: `wait4`'s peak resident set size of that one child.
A process forked from pytest starts with pytest's pages counted as its own, and Linux carries that
high-water mark across `exec` (seen in CI: 265 MiB, a long-running pytest worker's size, for a worker
that peaks at 80). So a small Python launcher, started first, forks the worker and reports its peak:
the launcher's own size (~10 MiB) is the most the worker can inherit.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tests.providers.servers import FakeServer, Request, Response
from tests.worker.conftest import WorkerPod, file_endpoint, job

RECORDS = 1_000_000
#: Holding these 1M records as dicts takes about 550 MiB. The streaming worker peaks at 65-90 MiB
#: (up to ~145 MiB seen on a loaded machine, where allocation timing differs); 200 MiB leaves room for
#: that while still failing loudly if records pile up.
PEAK_RSS_BOUND_MIB = 200

#: Runs argv[2:] as its child, writes that child's peak RSS (KiB) to argv[1] and exits with its code.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


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
            launcher=[sys.executable, "-c", LAUNCHER, str(peak_file := pod.root / "peak-rss-kib")],
        )
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None and stderr is not None
        # Drain the pipes while waiting so the child never blocks on a full pipe.
        output: list[str] = []
        drain = threading.Thread(target=lambda: output.append(stdout.read() + stderr.read()))
        drain.start()
        process.wait()
        drain.join()
    peak_mib = int(peak_file.read_text()) / 1024  # kilobytes on Linux
    done = pod.finished(process.returncode, "".join(output), "")
    print(f"worker peak RSS: {peak_mib:.1f} MiB for {RECORDS} records")
    assert done.exit_code == 0, done.report
    assert done.records["read"] == RECORDS and receiver.records == RECORDS
    assert peak_mib < PEAK_RSS_BOUND_MIB
