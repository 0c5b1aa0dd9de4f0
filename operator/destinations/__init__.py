"""Destinations: a Kubernetes operator that runs data-sync jobs between customer data and marketing tools."""

__version__ = "0.1.0"

GROUP = "destinations.dev"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

#: The image that runs both the operator and the sync pods; the sandbox kubelet runs pods of this image
#: as local processes of the same installation.
DEFAULT_IMAGE = "ghcr.io/destinations-dev/destinations:0.1.0"
