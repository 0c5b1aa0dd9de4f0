"""`mailchimp`: audience (list) members, per the Mailchimp Marketing API 3.0.

https://mailchimp.com/developer/marketing/api/list-members/ and the batch endpoint
`POST /lists/{list_id}` ("Batch subscribe or unsubscribe", at most 500 members per call).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers.base import ProviderConfig


class MailchimpExportConfig(ProviderConfig):
    """Subscribe or update audience members from the source's records."""

    list_id: str = Field(min_length=1, pattern=r"^[a-zA-Z0-9]+$")
    """The audience (list) ID, shown in Audience → Settings → Audience name and defaults."""
    email_field: str = "email"
    """The record field holding the email address."""
    merge_fields: dict[str, str] = {}
    """Mailchimp merge tag → record field, e.g. `FNAME: first_name`."""
    status_if_new: Literal["subscribed", "pending", "transactional"] = "subscribed"
    """Status given to members not yet in the audience (`pending` sends a confirmation email)."""
    tags: list[str] = []
    """Tags added to every exported member."""


class MailchimpImportConfig(ProviderConfig):
    """Read audience members into the sink."""

    list_id: str = Field(min_length=1, pattern=r"^[a-zA-Z0-9]+$")
    """The audience (list) ID."""
    status: Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] | None = None
    """Only members with this status; all members when omitted."""
    page_size: int = Field(default=1000, ge=1, le=1000)
    """Members per page (Mailchimp's maximum is 1000)."""


CONFIG_MODELS = {JobType.EXPORT: MailchimpExportConfig, JobType.IMPORT: MailchimpImportConfig}
AUTH_METHODS = (AuthMethod.API_KEY, AuthMethod.OAUTH2)
DEFAULT_SCHEDULE = Schedule(every="6h")  # type: ignore[arg-type]
