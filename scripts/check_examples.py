"""Check the example jobs on a real cluster: each one's phase and reason, its created-by stamp, its sync pod.

Run by .github/workflows/e2e.yml after `kubectl apply -f examples/authorizations/ -f examples/jobs/`,
with only the standard library and `kubectl` (the runner has no project virtualenv). The examples'
Secrets hold placeholders, so the outcome of every job is known in advance (DESIGN.md §3):

- the Authorizations of facebook, google, mailchimp and salesforce fail their provider's credential
  check, so their jobs stay Pending, WaitingForAuthorization, with no sync pod;
- `events-api` (webhook, no endpoint to probe) is Healthy, so its jobs run when due:
  `signups-company-enrichment` (every 1h) runs at once and fails (its URLs are placeholders): Sleeping,
  BackingOff, pod run 1 Failed; `legacy-crm-backfill` (once) runs at once, and its pod waits for the
  PersistentVolumeClaim `crm-exports`, which the examples do not create: Running, pod Pending;
  `high-value-users-to-events-api` waits for its weekday 06:00 Europe/Paris cron: Pending,
  FirstRunScheduled, no pod;
- `lookalike-seed-to-facebook` has `paused: true`: Paused, no pod.

Every job carries `destinations.dev/created-by` (stamped by the admission webhook from the user who
applied it) and the same value in `status.createdBy`.

Usage: python3 scripts/check_examples.py --namespace marketing --created-by kubernetes-admin [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CREATED_BY = "destinations.dev/created-by"
JOB_LABEL = "destinations.dev/job"


@dataclass(frozen=True)
class Expected:
    phase: str
    reason: str
    first_pod_phase: str | None
    """The phase of the sync pod of run 1 (`<job>-run-1`), or None: the job has no pod at all."""


EXPECTED: Mapping[str, Expected] = {
    "churn-risk-to-facebook": Expected("Pending", "WaitingForAuthorization", None),
    "customers-to-salesforce": Expected("Pending", "WaitingForAuthorization", None),
    "high-value-users-to-events-api": Expected("Pending", "FirstRunScheduled", None),
    "legacy-crm-backfill": Expected("Running", "RunInProgress", "Pending"),
    "lookalike-seed-to-facebook": Expected("Paused", "PausedBySpec", None),
    "loyal-customers-to-google": Expected("Pending", "WaitingForAuthorization", None),
    "mailchimp-members-to-warehouse": Expected("Pending", "WaitingForAuthorization", None),
    "newsletter-to-mailchimp": Expected("Pending", "WaitingForAuthorization", None),
    "salesforce-won-opportunities": Expected("Pending", "WaitingForAuthorization", None),
    "signups-company-enrichment": Expected("Sleeping", "BackingOff", "Failed"),
    "signups-enriched-from-salesforce": Expected("Pending", "WaitingForAuthorization", None),
}


def problems(
    jobs: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], created_by: str
) -> list[str]:
    """Every way the cluster differs from `EXPECTED`, one sentence each (empty: all as expected)."""
    found: list[str] = []
    by_name = {job["metadata"]["name"]: job for job in jobs}
    for name in sorted(by_name.keys() - EXPECTED.keys()):
        found.append(f"{name}: a job the examples do not define")
    pods_of: dict[str, dict[str, str]] = {}
    for pod in pods:
        owner = (pod["metadata"].get("labels") or {}).get(JOB_LABEL)
        if owner is not None:
            pods_of.setdefault(owner, {})[pod["metadata"]["name"]] = (pod.get("status") or {}).get(
                "phase", ""
            )
    for name, expected in EXPECTED.items():
        job = by_name.get(name)
        if job is None:
            found.append(f"{name}: missing")
            continue
        status = job.get("status") or {}
        seen = (status.get("phase"), status.get("reason"))
        if seen != (expected.phase, expected.reason):
            found.append(
                f"{name}: phase/reason {seen[0]}/{seen[1]}, expected {expected.phase}/{expected.reason}"
                f" ({status.get('message', 'no message')})"
            )
        stamp = (job["metadata"].get("annotations") or {}).get(CREATED_BY)
        if stamp != created_by or status.get("createdBy") != created_by:
            found.append(
                f"{name}: created-by annotation {stamp!r} and status.createdBy "
                f"{status.get('createdBy')!r}, expected {created_by!r}"
            )
        owned = pods_of.get(name, {})
        if expected.first_pod_phase is None:
            if owned:
                found.append(f"{name}: expected no sync pod, found {sorted(owned)}")
        else:
            first = f"{name}-run-1"
            if owned.get(first) != expected.first_pod_phase:
                found.append(
                    f"{name}: sync pod {first} in phase {owned.get(first, 'absent')!r}, "
                    f"expected {expected.first_pod_phase!r} (pods: {sorted(owned) or 'none'})"
                )
    return found


def _kubectl_items(*arguments: str) -> list[dict[str, Any]]:
    output = subprocess.run(
        ["kubectl", "get", *arguments, "-o", "json"], check=True, capture_output=True, text=True
    ).stdout
    items: list[dict[str, Any]] = json.loads(output)["items"]
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="marketing")
    parser.add_argument("--created-by", required=True, help="the user who applied the examples")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the jobs to settle")
    args = parser.parse_args(argv)

    deadline = time.monotonic() + args.timeout
    while True:
        jobs = _kubectl_items("destinationjobs", "-n", args.namespace)
        pods = _kubectl_items("pods", "-n", args.namespace, "-l", JOB_LABEL)
        found = problems(jobs, pods, args.created_by)
        if not found:
            print(f"all {len(EXPECTED)} example jobs are as expected")
            return 0
        if time.monotonic() > deadline:
            print(f"{len(found)} differences after {args.timeout:g}s:", file=sys.stderr)
            for line in found:
                print(f"  {line}", file=sys.stderr)
            return 1
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main())
