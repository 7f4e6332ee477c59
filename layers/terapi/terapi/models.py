"""API models: request bodies, stored credentials by type, and the replies of the REST API.

The connection reply follows the seed's connection object; it carries credential status but never
a credential value. Validation errors name the offending field so callers can fix their request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

CONNECTION_ID_MAX = 255
PROVIDER_CONFIG_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
CREDENTIAL_TYPES = ("oauth2", "oauth1", "api_key", "basic", "custom")
CredentialType = Literal["oauth2", "oauth1", "api_key", "basic", "custom"]


def utc_now() -> datetime:
    """The current time in UTC, truncated to whole seconds as every stored timestamp is."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    """Format a timestamp as ISO 8601 UTC with a `Z`, the API's only timestamp format."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    """Parse a stored ISO 8601 timestamp; `None` stays `None`."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _check_connection_id(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > CONNECTION_ID_MAX:
        raise ValueError(f"must be at most {CONNECTION_ID_MAX} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


ConnectionId = Annotated[str, AfterValidator(_check_connection_id)]
ProviderConfigKey = Annotated[str, StringConstraints(pattern=PROVIDER_CONFIG_KEY_PATTERN)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class _Strict(BaseModel):
    """Request bodies: unknown fields are refused so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


class OAuth2Credentials(BaseModel):
    """An OAuth 2.0 token set; `expires_in` is converted to `expires_at` on import."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["oauth2"] = "oauth2"
    access_token: NonEmpty
    refresh_token: NonEmpty | None = None
    expires_at: datetime | None = None
    expires_in: int | None = Field(default=None, ge=0, exclude=True)
    token_type: str | None = None
    scope: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _expiry_from_expires_in(self) -> OAuth2Credentials:
        if self.expires_at is None and self.expires_in is not None:
            self.expires_at = utc_now() + timedelta(seconds=self.expires_in)
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                self.expires_at = self.expires_at.replace(tzinfo=UTC)
            self.expires_at = self.expires_at.astimezone(UTC).replace(microsecond=0)
        return self


class OAuth1Credentials(BaseModel):
    """An OAuth 1.0a access token and its secret."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["oauth1"] = "oauth1"
    oauth_token: NonEmpty
    oauth_token_secret: NonEmpty
    raw: dict[str, Any] = Field(default_factory=dict)


class ApiKeyCredentials(BaseModel):
    """A static API key."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["api_key"] = "api_key"
    api_key: NonEmpty


class BasicCredentials(BaseModel):
    """A username and an optional password, sent as HTTP basic auth."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["basic"] = "basic"
    username: NonEmpty
    password: str | None = None


class CustomCredentials(BaseModel):
    """Any object the application wants kept secret; Terapi stores it verbatim."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["custom"] = "custom"
    values: dict[str, Any]


Credentials = (
    OAuth2Credentials | OAuth1Credentials | ApiKeyCredentials | BasicCredentials | CustomCredentials
)
_CREDENTIAL_MODELS: dict[str, type[BaseModel]] = {
    "oauth2": OAuth2Credentials,
    "oauth1": OAuth1Credentials,
    "api_key": ApiKeyCredentials,
    "basic": BasicCredentials,
    "custom": CustomCredentials,
}


def parse_credentials(payload: dict[str, Any], default_type: str) -> Credentials:
    """Validate imported credentials against their type (defaulting from the provider's mode).

    A `custom` credential accepts any object: everything but `type` is kept under `values`.
    """
    kind = payload.get("type", default_type)
    if kind not in _CREDENTIAL_MODELS:
        raise ValueError(f"type must be one of {', '.join(CREDENTIAL_TYPES)}")
    body = {k: v for k, v in payload.items() if k != "type"}
    if kind == "custom":
        body = {"values": body}
    return _CREDENTIAL_MODELS[kind].model_validate({"type": kind, **body})


def load_credentials(stored: dict[str, Any]) -> Credentials:
    """Rebuild credentials from their stored (already validated) form."""
    return _CREDENTIAL_MODELS[stored["type"]].model_validate(stored)


class CreateConnectionRequest(_Strict):
    """`POST /connection`: import credentials the application already holds."""

    connection_id: ConnectionId
    provider_config_key: ProviderConfigKey
    credentials: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    connection_config: dict[str, str] | None = None


class CreateIntegrationRequest(_Strict):
    """`POST /integration`; URL fields apply to the generic `oauth2` provider only."""

    provider_config_key: ProviderConfigKey
    provider: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    oauth_client_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    oauth_client_secret: NonEmpty | None = None
    oauth_scopes: str | list[str] | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    api_base_url: str | None = None
    scope_separator: str | None = None
    pkce: bool | None = None
    token_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = None

    @field_validator("authorization_url", "token_url", "api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/?#]+[^\s]*$", value):
            raise ValueError("must be an http(s) URL")
        return value


class UpdateIntegrationRequest(_Strict):
    """`PATCH /integration/{key}`: change the OAuth client or its scopes."""

    oauth_client_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    oauth_client_secret: NonEmpty | None = None
    oauth_scopes: str | list[str] | None = None


def normalise_scopes(scopes: str | list[str] | None) -> list[str]:
    """Accept the contract's comma-separated string or a list; return a clean list."""
    if scopes is None:
        return []
    items = scopes.split(",") if isinstance(scopes, str) else scopes
    return [s.strip() for s in items if s.strip()]
