"""Provider plug-ins: the marketing tools and endpoints jobs sync with.

A provider is a `Provider` instance published under the entry-point group `destinations.providers`;
`load_catalog()` finds every installed one, so a provider shipped in another package needs no change here.
"""

from destinations.providers.base import CredentialCheck, Credentials, Provider
from destinations.providers.catalog import ProviderNotFound, get_provider, load_catalog

__all__ = ["CredentialCheck", "Credentials", "Provider", "ProviderNotFound", "get_provider", "load_catalog"]
