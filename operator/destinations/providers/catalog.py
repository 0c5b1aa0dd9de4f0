"""Discovery of provider plug-ins through the `destinations.providers` entry-point group."""

from __future__ import annotations

import functools
from importlib import metadata

from destinations.providers.base import Provider

ENTRY_POINT_GROUP = "destinations.providers"


class ProviderNotFound(LookupError):
    """The catalog has no provider with this key."""


@functools.cache
def load_catalog() -> dict[str, Provider]:
    """Every installed provider by key, sorted; loaded once per process."""
    providers: dict[str, Provider] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        provider = _load(entry_point)
        providers[provider.key] = provider
    return dict(sorted(providers.items()))


def get_provider(key: str) -> Provider:
    """The provider with this key. Where the catalog is not loaded yet (a sync pod, which needs one
    provider), only that provider's plug-in is imported: importing them all cost every worker process
    about a quarter of its start-up."""
    if load_catalog.cache_info().currsize == 0:
        provider = _load_one(key)
        if provider is not None:
            return provider
    catalog = load_catalog()
    try:
        return catalog[key]
    except KeyError:
        raise ProviderNotFound(
            f"unknown provider {key!r}; the catalog has: {', '.join(catalog) or 'no providers'}"
        ) from None


@functools.cache
def _load_one(key: str) -> Provider | None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP, name=key):
        return _load(entry_point)
    return None


def _load(entry_point: metadata.EntryPoint) -> Provider:
    provider = entry_point.load()
    if not isinstance(provider, Provider):
        raise TypeError(f"entry point {entry_point.name!r} ({entry_point.value}) is not a Provider instance")
    if provider.key != entry_point.name:
        raise ValueError(f"entry point {entry_point.name!r} publishes provider key {provider.key!r}")
    return provider
