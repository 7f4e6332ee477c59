"""Webhook configuration service: URLs, per-connection overrides and signing key rotation.

Receiver URLs are checked when they are configured, not when events are sent: `https` only,
plus `http` to a loopback host when `TERAPI_ALLOW_LOOPBACK_WEBHOOKS=true` (set by `make dev`).

Rotation hands out a new key exactly once, in the rotate reply. For `ROTATION_WINDOW_SECONDS`
(24 hours) afterwards every delivery is signed with both the new and the previous key; rotating
again within a window drops the oldest key. The settings item's version is claimed first (a
conditional write, so concurrent rotations cannot silently lose a key), then the secret is
written; the sender re-reads the secret whenever the item's version is newer than its cache.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, StringConstraints

from terapi.errors import Conflict, InvalidRequest, TerapiError
from terapi.models import ConnectionId, ProviderConfigKey, iso, utc_now
from terapi.observability import logger
from terapi.settings import get_settings
from terapi.store.connections import ConnectionStore
from terapi.store.webhook_settings import (
    RotationConflict,
    SigningKeys,
    SigningKeyStore,
    WebhookSettingsRecord,
    WebhookSettingsStore,
)

ROTATION_WINDOW_SECONDS = 24 * 3600
URL_MAX = 2048
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=URL_MAX)]


class WebhookSettingsRequest(BaseModel):
    """`PUT /webhooks/settings`: both URLs; an absent or null URL is removed."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    primary_url: WebhookUrl | None = None
    secondary_url: WebhookUrl | None = None


class ConnectionWebhookRequest(BaseModel):
    """`PUT /webhooks/connections`: one connection's override; null removes it."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId
    webhook_url: WebhookUrl | None


def validate_webhook_url(url: str, field: str = "webhook_url") -> str:
    """Return `url` if webhooks may be sent to it, else raise a 400 naming `field`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if any(c.isspace() for c in url) or not host or parts.scheme not in ("https", "http"):
        raise InvalidRequest(f"{field}: must be an absolute https URL", code="invalid_webhook_url")
    if parts.scheme == "http":
        if not _is_loopback(host):
            raise InvalidRequest(f"{field}: must use https (http is allowed only to a loopback "
                                 "host in local development)", code="invalid_webhook_url")
        if not get_settings().allow_loopback_webhooks:
            raise InvalidRequest(f"{field}: http to a loopback host is allowed only when "
                                 "TERAPI_ALLOW_LOOPBACK_WEBHOOKS=true", code="invalid_webhook_url")
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_view(record: WebhookSettingsRecord) -> dict[str, Any]:
    """The settings reply: URLs and rotation state, never a key."""
    now = int(time.time())
    window = record.rotation_ends_at if (record.rotation_ends_at or 0) > now else None
    return {"primary_url": record.primary_url, "secondary_url": record.secondary_url,
            "signing_key": {"rotated_at": record.key_rotated_at,
                            "previous_key_valid_until": _iso_epoch(window)},
            "updated_at": record.updated_at}


def get_webhook_settings() -> dict[str, Any]:
    """The deployment's webhook settings."""
    return settings_view(WebhookSettingsStore().get())


def update_webhook_settings(request: WebhookSettingsRequest) -> dict[str, Any]:
    """Validate and store both URLs."""
    primary = request.primary_url and validate_webhook_url(request.primary_url, "primary_url")
    secondary = request.secondary_url and validate_webhook_url(request.secondary_url,
                                                               "secondary_url")
    record = WebhookSettingsStore().put_urls(primary, secondary, iso(utc_now()) or "")
    logger.info("webhook settings updated", primary=bool(primary), secondary=bool(secondary))
    return settings_view(record)


def rotate_signing_key() -> dict[str, Any]:
    """Make a new signing key current; the previous one keeps signing for the window."""
    arn = get_settings().webhook_signing_key_arn
    if not arn:
        raise TerapiError("no webhook signing key is configured for this deployment",
                          code="webhooks_not_configured", status=503)
    store, keys = WebhookSettingsStore(), SigningKeyStore(arn)
    seen = store.get()
    now = int(time.time())
    ends_at = now + ROTATION_WINDOW_SECONDS
    try:
        claimed = store.claim_rotation(seen.signing_key_version, iso(utc_now()) or "", ends_at)
    except RotationConflict:
        raise Conflict("another rotation of the signing key is in progress; retry shortly",
                       code="rotation_conflict") from None
    old = keys.read()
    new_key = "whsec_" + secrets.token_urlsafe(32)
    keys.write(SigningKeys(current=new_key, previous=old.current, previous_until=ends_at,
                           version=claimed.signing_key_version))
    logger.info("webhook signing key rotated", version=claimed.signing_key_version)
    return {"signing_key": new_key, "rotated_at": claimed.key_rotated_at,
            "previous_key_valid_until": _iso_epoch(ends_at)}


def get_connection_webhook(provider_config_key: str, connection_id: str) -> dict[str, Any]:
    """A connection's webhook override (null when it uses the deployment's URL)."""
    record = ConnectionStore().get(provider_config_key, connection_id)
    return _override_view(provider_config_key, connection_id, record.webhook_url)


def set_connection_webhook(request: ConnectionWebhookRequest) -> dict[str, Any]:
    """Set or remove a connection's webhook override."""
    url = request.webhook_url and validate_webhook_url(request.webhook_url)
    record = WebhookSettingsStore().set_connection_url(
        request.provider_config_key, request.connection_id, url, iso(utc_now()) or "")
    logger.info("connection webhook override updated",
                provider_config_key=request.provider_config_key, override=bool(url))
    return _override_view(request.provider_config_key, request.connection_id, record.webhook_url)


def _override_view(provider_config_key: str, connection_id: str,
                   webhook_url: str | None) -> dict[str, Any]:
    return {"provider_config_key": provider_config_key, "connection_id": connection_id,
            "webhook_url": webhook_url}


def _iso_epoch(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(seconds, UTC))
