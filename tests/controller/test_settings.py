"""Operator settings: flags win over environment variables, which win over defaults; bad values are named."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from destinations import DEFAULT_IMAGE
from destinations.controller.pods import AuthorizationInfo, JobIdentity, render_sync_pod
from destinations.controller.settings import WebhookMode, add_arguments, settings_from
from tests.controller.test_pods import job_spec


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


def test_defaults_watch_all_namespaces_with_the_project_image() -> None:
    settings = settings_from(parse(), environ={})
    assert settings.namespaces == ()
    assert settings.sync_image == DEFAULT_IMAGE
    assert settings.default_purge_after == timedelta(days=90)
    assert settings.max_concurrent_runs == 0
    assert settings.webhooks is WebhookMode.OFF
    assert settings.sync_resources is None


def test_repeated_namespace_flags_are_all_watched() -> None:
    assert settings_from(parse("-n", "a", "--namespace", "b"), environ={}).namespaces == ("a", "b")


def test_environment_variables_configure_a_deployment() -> None:
    environ = {
        "DESTINATIONS_NAMESPACES": "marketing, analytics",
        "DESTINATIONS_PURGE_AFTER": "never",
        "DESTINATIONS_MAX_CONCURRENT_RUNS": "20",
        "DESTINATIONS_WEBHOOKS": "managed",
    }
    settings = settings_from(parse(), environ=environ)
    assert settings.namespaces == ("marketing", "analytics")
    assert settings.default_purge_after is None
    assert settings.max_concurrent_runs == 20
    assert settings.webhooks is WebhookMode.MANAGED


def test_flags_win_over_environment_variables() -> None:
    settings = settings_from(
        parse("--max-concurrent-runs", "3"), environ={"DESTINATIONS_MAX_CONCURRENT_RUNS": "9"}
    )
    assert settings.max_concurrent_runs == 3


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DESTINATIONS_MAX_CONCURRENT_RUNS": "many"}, "max-concurrent-runs: 'many' is not an integer"),
        ({"DESTINATIONS_MAX_CONCURRENT_RUNS": "-1"}, "max-concurrent-runs: -1 must be at least 0"),
        ({"DESTINATIONS_PURGE_AFTER": "soon"}, "purge-after: 'soon' is not a duration"),
        ({"DESTINATIONS_WEBHOOKS": "on"}, "webhooks: 'on' is not one of off, managed, external"),
        ({"DESTINATIONS_NAMESPACES": "team-*"}, "namespace: 'team-\\*' is not a namespace name"),
        ({"DESTINATIONS_SYNC_RESOURCES": "{cpu"}, "sync-resources: '{cpu' is not JSON"),
        ({"DESTINATIONS_SYNC_RESOURCES": '{"cpu": "1"}'}, "sync-resources: 'cpu' is not accepted"),
    ],
)
def test_a_bad_setting_is_refused_naming_it_the_value_and_what_is_accepted(
    environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace("{", r"\{")):
        settings_from(parse(), environ=environ)


def test_default_sync_resources_apply_to_pods_without_their_own() -> None:
    environ = {"DESTINATIONS_SYNC_RESOURCES": '{"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}'}
    settings = settings_from(parse(), environ=environ)
    pod = render_sync_pod(
        JobIdentity("ns", "job", "uid"),
        job_spec(),
        1,
        "job-run-1",
        AuthorizationInfo("none", None),
        image=settings.sync_image,
        default_resources=settings.sync_resources,
    )
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "250m"},
        "limits": {"memory": "1Gi"},
    }


def test_a_jobs_own_resources_win_over_the_operator_default() -> None:
    spec = job_spec(podTemplate={"resources": {"requests": {"cpu": "2"}}})
    pod = render_sync_pod(
        JobIdentity("ns", "job", "uid"),
        spec,
        1,
        "job-run-1",
        AuthorizationInfo("none", None),
        image="x",
        default_resources={"requests": {"cpu": "250m"}},
    )
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "2"}
