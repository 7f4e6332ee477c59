"""Tokens that are always valid: the read path, and a single-flight refresh across containers.

Read path: one consistent `GetItem`. The secret comes from a per-container cache keyed by the
item's `credentials_version`, so a fresh token costs no Secrets Manager call in a warm container,
and any container's refresh invalidates every other container's cache through that version.

Refresh path: the first caller takes the connection's lease (a conditional write on its item);
every other caller, in any container, waits for the new version instead of calling the provider.
The lease holder reads the secret fresh (never from a cache: it must use the newest refresh
token), calls the provider, and writes the answer to Secrets Manager before anything else, so a
rotated refresh token is never lost; only then does it commit the item and release the lease.
A response without a refresh token keeps the old one. A lease whose holder died expires alone.

Failure policy: a permanent refusal (`invalid_grant`, ...) marks the credentials invalid with the
reason; a transient one (5xx, timeout) is retried with backoff. Either way the connection then
cools down: unforced refreshes are not sent to the provider again before the window ends.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any

from terapi.errors import (
    CredentialsInvalid,
    RefreshCoolingDown,
    RefreshFailed,
    RefreshInProgress,
)
from terapi.models import iso, parse_iso, utc_now
from terapi.observability import logger
from terapi.settings import get_settings
from terapi.store.connections import ConnectionRecord, ConnectionStore, LeaseHeld
from terapi.store.secrets import SecretStore
from terapi.webhooks import publish_auth

REFRESH_SHARDS = 4
DEFAULT_MARGIN_SECONDS = 300
CACHE_SIZE = 1024
_cache: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
_cache_lock = Lock()


def now_ms() -> int:
    """The current time in epoch milliseconds (the unit of leases and cool-downs)."""
    return int(time.time() * 1000)


def margin_seconds(provider_name: str) -> int:
    """How long before expiry a provider's tokens are refreshed (from the catalog)."""
    from terapi.catalog import get_provider

    provider = get_provider(provider_name)
    return provider.refresh_margin_seconds if provider else DEFAULT_MARGIN_SECONDS


def refresh_schedule(provider_config_key: str, connection_id: str, secret_value: dict[str, Any],
                     margin: int) -> dict[str, Any]:
    """Index fields that put a refreshable connection on the scheduled refresher's list.

    Only OAuth 2.0 credentials with both a refresh token and an expiry are scheduled; `None`
    values remove a connection from the index.
    """
    expires_at = parse_iso(secret_value.get("expires_at"))
    if secret_value.get("type") != "oauth2" or not secret_value.get("refresh_token") or (
            expires_at is None):
        return {"refresh_shard": None, "refresh_due_at": None}
    shard = zlib.crc32(f"{provider_config_key}\0{connection_id}".encode()) % REFRESH_SHARDS
    return {"refresh_shard": f"refresh#{shard}",
            "refresh_due_at": int(expires_at.timestamp()) - margin}


def cached_secret(record: ConnectionRecord) -> dict[str, Any]:
    """The connection's credentials, from this container's cache when its version is current."""
    with _cache_lock:
        hit = _cache.get(record.secret_arn)
        if hit and hit[0] == record.credentials_version:
            _cache.move_to_end(record.secret_arn)
            return hit[1]
    value = SecretStore().read(record.secret_arn)
    remember(record, value)
    return value


def remember(record: ConnectionRecord, value: dict[str, Any]) -> None:
    """Cache a secret value under the version its item now carries."""
    with _cache_lock:
        _cache[record.secret_arn] = (record.credentials_version, value)
        _cache.move_to_end(record.secret_arn)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def forget(secret_arn: str) -> None:
    """Drop a cached secret (after a write whose item update could not be confirmed)."""
    with _cache_lock:
        _cache.pop(secret_arn, None)


def needs_refresh(record: ConnectionRecord) -> bool:
    """True when an OAuth 2.0 token expires within its provider's margin."""
    expires_at = parse_iso(record.expires_at)
    if record.credentials_type != "oauth2" or expires_at is None:
        return False
    return expires_at.timestamp() - time.time() <= margin_seconds(record.provider)


def is_expired(record: ConnectionRecord) -> bool:
    """True when the access token's expiry has passed."""
    expires_at = parse_iso(record.expires_at)
    return expires_at is not None and expires_at <= datetime.now(UTC)


def get_token(provider_config_key: str, connection_id: str, *,
              force_refresh: bool = False) -> dict[str, Any]:
    """A valid token for the connection, refreshed first when it is about to expire."""
    record = ConnectionStore().get(provider_config_key, connection_id)
    record, value = ensure_fresh(record, force=force_refresh)
    return token_view(record, value)


def ensure_fresh(record: ConnectionRecord, *, force: bool) -> tuple[ConnectionRecord,
                                                                      dict[str, Any]]:
    """Return the connection's credentials, refreshing them when due (or when forced)."""
    if record.credentials_status == "invalid" and not force:
        raise CredentialsInvalid(_invalid_message(record))
    if record.credentials_type != "oauth2" or not (force or needs_refresh(record)):
        return record, cached_secret(record)
    if not force and is_cooling_down(record):
        if not is_expired(record):
            return record, cached_secret(record)
        raise RefreshCoolingDown(_cooling_message(record))
    return refresh(record, force=force)


def refresh(record: ConnectionRecord, *, force: bool) -> tuple[ConnectionRecord, dict[str, Any]]:
    """Refresh once across every container: take the lease, or wait for whoever holds it."""
    store = ConnectionStore()
    settings = get_settings()
    deadline = time.monotonic() + settings.refresh_wait_seconds
    seen_version = record.credentials_version
    while True:
        owner = str(uuid.uuid4())
        try:
            leased = store.acquire_lease(record.provider_config_key, record.connection_id,
                                         owner, settings.refresh_lease_seconds)
        except LeaseHeld:
            current = _wait_for_lease_holder(store, record, seen_version, deadline)
            if current.credentials_version != seen_version:
                return current, cached_secret(current)
            _raise_unless_retryable(current, force=force)
            if not force and is_cooling_down(current):
                return current, cached_secret(current)
            continue
        if leased.credentials_version != seen_version:
            store.release_lease(leased, owner)
            return leased, cached_secret(leased)
        # A refresh that failed while we waited for the lease bumps no version: judge the state
        # the lease came back with, so a failed connection is not sent to the provider again.
        if not force and (leased.credentials_status == "invalid" or is_cooling_down(leased)):
            store.release_lease(leased, owner)
            _raise_unless_retryable(leased, force=False)
            return leased, cached_secret(leased)
        return _refresh_as_holder(store, leased, owner)


def _wait_for_lease_holder(store: ConnectionStore, record: ConnectionRecord, seen_version: int,
                           deadline: float) -> ConnectionRecord:
    delay = 0.05
    while time.monotonic() < deadline:
        time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security
        delay = min(delay * 1.5, 0.25)
        current = store.get(record.provider_config_key, record.connection_id)
        lease_open = current.lease_until is None or current.lease_until < now_ms()
        if current.credentials_version != seen_version or lease_open:
            return current
    raise RefreshInProgress("another request is refreshing this connection's token; retry "
                            "shortly")


def _raise_unless_retryable(record: ConnectionRecord, *, force: bool) -> None:
    """After a holder gave the lease back without new credentials, report its failure."""
    if record.credentials_status == "invalid" and not force:
        raise CredentialsInvalid(_invalid_message(record))
    if not force and is_cooling_down(record) and is_expired(record):
        raise RefreshCoolingDown(_cooling_message(record))


def _refresh_as_holder(store: ConnectionStore, leased: ConnectionRecord,
                       owner: str) -> tuple[ConnectionRecord, dict[str, Any]]:
    from terapi.oauth2 import TokenError

    secrets = SecretStore()
    current: dict[str, Any] | None = None
    try:
        current = secrets.read(leased.secret_arn)
        grant = _grant_for(leased, current)
        tokens = _request_with_retries(grant)
    except TokenError as exc:
        latest = _rotated_meanwhile(secrets, leased, current)
        if latest is not None:
            store.release_lease(leased, owner)
            return leased, latest
        raise _record_failure(store, leased, owner, exc) from None
    except BaseException:
        store.release_lease(leased, owner)
        raise
    value = _merge(current, tokens)
    version = secrets.replace(leased.secret_arn, value)
    return _commit_refresh(store, leased, owner, value, version=version,
                           connection_config=tokens.connection_config)


def _rotated_meanwhile(secrets: SecretStore, leased: ConnectionRecord,
                       used: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newer credentials another holder stored while our refresh ran, if any.

    Our lease can expire while the provider is slow, and another caller may then refresh: our
    request, made with the refresh token it just rotated, fails. That failure says nothing
    about the connection, so it must not mark the credentials invalid.
    """
    if used is None:
        return None
    latest = secrets.read(leased.secret_arn)
    if latest.get("refresh_token") != used.get("refresh_token") or (
            latest.get("access_token") != used.get("access_token")):
        logger.info("refresh superseded by another holder",
                    provider_config_key=leased.provider_config_key)
        return latest
    return None


def _commit_refresh(store: ConnectionStore, leased: ConnectionRecord, owner: str,
                    value: dict[str, Any], *, version: str,
                    connection_config: dict[str, str]) -> tuple[ConnectionRecord, dict[str, Any]]:
    import json

    now = iso(utc_now())
    changes: dict[str, Any] = {
        "secret_version": version, "expires_at": value.get("expires_at"),
        "last_refreshed_at": now, "updated_at": now, "credentials_status": "valid",
        "credentials_error": None, "refresh_failed_at": None, "refresh_blocked_until": None,
        **refresh_schedule(leased.provider_config_key, leased.connection_id, value,
                           margin_seconds(leased.provider)),
    }
    if connection_config:
        merged = {**json.loads(leased.connection_config_json), **connection_config}
        changes["connection_config_json"] = json.dumps(merged)
    try:
        committed = store.commit_credentials(leased, owner, changes)
    except Exception as exc:  # noqa: BLE001 - the new tokens are safe in Secrets Manager
        forget(leased.secret_arn)
        logger.error("refreshed credentials stored but the connection item was not updated",
                     provider_config_key=leased.provider_config_key,
                     error_type=type(exc).__name__)
        return leased, value
    remember(committed, value)
    logger.info("token refreshed", provider_config_key=leased.provider_config_key,
                recovered=leased.refresh_failed_at is not None)
    _emit_refresh_metric("TokenRefreshed")
    if leased.refresh_failed_at is not None:
        publish_auth(committed, "refresh")
    return committed, value


@dataclass(frozen=True)
class Grant:
    """A token request that renews a connection's credentials."""

    url: str
    client: Any
    params: dict[str, str]
    token_path: str | None
    config_fields: dict[str, str]


def _grant_for(record: ConnectionRecord, current: dict[str, Any]) -> Grant:
    """Build the token request that renews these credentials (refresh or client credentials).

    The client and scopes are built exactly as the OAuth flow builds them (verification.py),
    so a refresh presents itself to the provider the way the first token request did.
    """
    import json

    from terapi.oauth2 import TokenError
    from terapi.services.integrations import provider_for
    from terapi.services.verification import oauth_client_for, render, requested_scopes
    from terapi.store.integrations import IntegrationStore

    integration = IntegrationStore().get(record.provider_config_key)
    provider = provider_for(integration)
    config = json.loads(record.connection_config_json)
    client = oauth_client_for(integration, provider, config, client_id=current.get("client_id"),
                              secret=current.get("client_secret"))
    if provider.auth_mode == "oauth2_cc":
        params = {"grant_type": "client_credentials"}
        scopes = requested_scopes(integration, provider)
        if scopes:
            params["scope"] = scopes
    elif current.get("refresh_token"):
        params = {"grant_type": "refresh_token", "refresh_token": current["refresh_token"]}
    else:
        raise TokenError("no_refresh_token", "the access token expired and there is no refresh "
                         "token; the end user must reconnect", permanent=True, status=None)
    url = render(provider.refresh_url or provider.token_url or "", config, "token_url")
    return Grant(url, client, params, provider.token_response_path,
                 dict(provider.connection_config_from_token))


def _request_with_retries(grant: Grant) -> Any:
    """Send the grant, retrying transient failures with backoff inside the lease's time."""
    from terapi.oauth2 import TokenError, post_token_request

    settings = get_settings()
    budget_end = time.monotonic() + settings.refresh_lease_seconds / 2
    for attempt in range(settings.refresh_attempts):
        try:
            return post_token_request(grant.url, grant.client, grant.params, grant.token_path,
                                      grant.config_fields)
        except TokenError as exc:
            pause = 0.25 * 2 ** attempt * (0.5 + random.random())  # noqa: S311 - jitter
            last = attempt + 1 >= settings.refresh_attempts
            if exc.permanent or last or time.monotonic() + pause > budget_end:
                raise
            logger.warning("token refresh attempt failed", error=exc.error, status=exc.status,
                           attempt=attempt + 1)
            time.sleep(pause)
    raise AssertionError("refresh_attempts must be at least 1")


def _merge(current: dict[str, Any], tokens: Any) -> dict[str, Any]:
    """New credentials; a response without a refresh token keeps the old one."""
    value = {k: v for k, v in current.items() if k in ("client_id", "client_secret")}
    value.update(tokens.to_secret())
    if not tokens.refresh_token and current.get("refresh_token"):
        value["refresh_token"] = current["refresh_token"]
    return value


def _record_failure(store: ConnectionStore, leased: ConnectionRecord, owner: str,
                    exc: Any) -> CredentialsInvalid | RefreshFailed:
    """Record why the refresh failed, start the cool-down, release the lease; return the error."""
    settings = get_settings()
    reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
    changes: dict[str, Any] = {
        "refresh_failed_at": iso(utc_now()),
        "refresh_blocked_until": now_ms() + settings.refresh_cooldown_seconds * 1000,
        "credentials_error": reason[:500],
    }
    if exc.permanent:
        changes.update(credentials_status="invalid", refresh_shard=None, refresh_due_at=None)
    store.release_lease(leased, owner, changes)
    logger.warning("token refresh failed", provider_config_key=leased.provider_config_key,
                   error=exc.error, status=exc.status, permanent=exc.permanent)
    _emit_refresh_metric("TokenRefreshFailed")
    publish_auth(leased, "refresh", error=(exc.error, exc.description or exc.error))
    if exc.permanent:
        return CredentialsInvalid(f"the provider refused the credentials ({reason}); the end "
                                  "user must reconnect")
    return RefreshFailed(f"the provider could not refresh the token ({reason}); it will not be "
                        f"asked again for {settings.refresh_cooldown_seconds} seconds unless "
                        "force_refresh=true")


def _emit_refresh_metric(name: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from terapi.observability import metrics

    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def is_cooling_down(record: ConnectionRecord) -> bool:
    """True while a failed refresh's cool-down window is open."""
    return record.refresh_blocked_until is not None and record.refresh_blocked_until > now_ms()


def _cooling_message(record: ConnectionRecord) -> str:
    until = datetime.fromtimestamp((record.refresh_blocked_until or 0) / 1000, UTC)
    return (f"the last refresh failed ({record.credentials_error}); the provider is not asked "
            f"again before {iso(until)} unless force_refresh=true")


def _invalid_message(record: ConnectionRecord) -> str:
    return (f"the connection's credentials are invalid ({record.credentials_error}); the end "
            "user must reconnect")


def token_view(record: ConnectionRecord, value: dict[str, Any]) -> dict[str, Any]:
    """The token endpoint's reply: the credential values, by design, in their type's shape."""
    kind = value.get("type", record.credentials_type)
    if kind == "oauth2":
        view = {"type": "oauth2", "access_token": value["access_token"],
                "expires_at": record.expires_at, "raw": value.get("raw") or {}}
        if is_cooling_down(record):
            view["refresh_blocked_until"] = iso(datetime.fromtimestamp(
                (record.refresh_blocked_until or 0) / 1000, UTC))
        return view
    if kind == "oauth1":
        return {"type": "oauth1", "oauth_token": value["oauth_token"],
                "oauth_token_secret": value["oauth_token_secret"], "raw": value.get("raw") or {}}
    if kind == "api_key":
        return {"type": "api_key", "api_key": value["api_key"]}
    if kind == "basic":
        return {"type": "basic", "username": value["username"],
                "password": value.get("password")}
    return {"type": "custom", "values": value.get("values", {})}
