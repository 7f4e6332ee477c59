"""Connections: import credentials, read, list, delete, and edit metadata.

Writes that touch both stores are ordered so a failure half-way leaves nothing behind:
- create: secret first, then the item (with the integration's count) in one transaction; if the
  transaction fails the new secret is deleted again;
- replace: under the credentials lease, the new secret version first, then the item; if the item
  write fails, the previous secret version is made current again;
- delete: the secret is scheduled for deletion first, then the item goes; if that fails the
  secret is restored.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from terapi.errors import Conflict, ConnectionBusy, InvalidRequest, NotFound
from terapi.models import (
    CreateConnectionRequest,
    iso,
    parse_credentials,
    utc_now,
)
from terapi.observability import logger
from terapi.services import verification
from terapi.services.integrations import provider_for
from terapi.services.views import connection_view
from terapi.settings import get_settings
from terapi.store.connections import ConnectionRecord, ConnectionStore, LeaseHeld
from terapi.store.integrations import IntegrationStore
from terapi.store.secrets import SecretStore
from terapi.webhooks import publish_auth

LEASE_SECONDS = 30
LEASE_WAIT_SECONDS = 5.0
_DEFAULT_CREDENTIAL_TYPE = {"oauth2": "oauth2", "oauth2_cc": "oauth2", "oauth1": "oauth1",
                            "api_key": "api_key", "basic": "basic"}


def encode_metadata(metadata: dict[str, Any]) -> str:
    """Serialise metadata, refusing documents over the configured size limit."""
    text = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    limit = get_settings().metadata_max_bytes
    if len(text.encode("utf-8")) > limit:
        raise InvalidRequest(f"metadata: must be at most {limit} bytes of JSON",
                             code="metadata_too_large")
    return text


def import_connection(request: CreateConnectionRequest) -> dict[str, Any]:
    """Create a connection from credentials the application holds, or replace its credentials.

    Posting an existing id replaces its credentials (and metadata when given), so a retried call
    converges on the same state.
    """
    integration = IntegrationStore().get(request.provider_config_key)
    provider = provider_for(integration)
    payload, secret_extra = request.credentials, {}
    config = dict(request.connection_config or {})
    if provider.auth_mode == "oauth2_cc" and verification.wants_client_credentials(payload):
        tokens, secret_extra = verification.fetch_client_credentials(integration, provider,
                                                                     payload, config)
        payload, config = tokens.to_secret(), {**config, **tokens.connection_config}
    if payload is None:
        raise InvalidRequest("credentials: is required")
    try:
        credentials = parse_credentials(payload,
                                        _DEFAULT_CREDENTIAL_TYPE.get(provider.auth_mode, "custom"))
    except ValidationError as exc:
        from terapi.api import validation_message

        raise InvalidRequest(validation_message(exc, "credentials")) from None
    except ValueError as exc:
        raise InvalidRequest(f"credentials.{exc}") from None
    metadata_json = encode_metadata(request.metadata) if request.metadata is not None else None
    verification.verify_credentials(provider, credentials, config)
    write = CredentialWrite(
        secret_value={**credentials.model_dump(mode="json", exclude_none=True), **secret_extra},
        changes={"credentials_type": credentials.type,
                 "expires_at": iso(getattr(credentials, "expires_at", None))},
        metadata_json=metadata_json,
        connection_config=config or request.connection_config,
    )
    return write_credentials(integration.provider, request.provider_config_key,
                             request.connection_id, write)


@dataclass
class CredentialWrite:
    """New credentials for a connection, with the non-secret fields written alongside them."""

    secret_value: dict[str, Any]
    changes: dict[str, Any]
    metadata_json: str | None = None
    connection_config: dict[str, Any] | None = None
    end_user: dict[str, Any] | None = None


def write_credentials(provider: str, provider_config_key: str, connection_id: str,
                      write: CredentialWrite) -> dict[str, Any]:
    """Create the connection or replace its credentials; shared by import and the OAuth flow.

    Refreshable OAuth 2.0 credentials are put on the scheduled refresher's index here, so every
    way of writing credentials keeps that index right.
    """
    from terapi.services.tokens import margin_seconds, refresh_schedule

    write.changes = {**write.changes, **refresh_schedule(
        provider_config_key, connection_id, write.secret_value, margin_seconds(provider))}
    store, secrets = ConnectionStore(), SecretStore()
    owner = str(uuid.uuid4())
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        try:
            current = store.acquire_lease(provider_config_key, connection_id, owner,
                                          LEASE_SECONDS)
        except NotFound:
            current = None
        except LeaseHeld:
            if time.monotonic() > deadline:
                raise ConnectionBusy("the connection's credentials are being written by another "
                                     "request; retry shortly") from None
            time.sleep(0.1)
            continue
        if current is not None:
            return connection_view(_replace(store, secrets, current, owner, write))
        try:
            record = _create(store, secrets, provider, (provider_config_key, connection_id),
                             write)
        except Conflict as exc:
            if exc.code != "connection_exists":
                raise
            continue
        return connection_view(record)


def _create(store: ConnectionStore, secrets: SecretStore, provider: str,
            ids: tuple[str, str], write: CredentialWrite) -> ConnectionRecord:
    provider_config_key, connection_id = ids
    now = iso(utc_now())
    arn, version = secrets.create("connections", write.secret_value, {
        "provider_config_key": provider_config_key, "connection_id": connection_id})
    extra = {k: v for k, v in write.changes.items() if k not in ("credentials_type", "expires_at")}
    record = ConnectionRecord(
        provider_config_key=provider_config_key,
        connection_id=connection_id,
        provider=provider,
        created_at=now,
        updated_at=now,
        secret_arn=arn,
        secret_version=version,
        credentials_type=write.changes["credentials_type"],
        expires_at=write.changes.get("expires_at"),
        metadata_json=write.metadata_json or "{}",
        connection_config_json=json.dumps(write.connection_config or {}),
        end_user_json=json.dumps(write.end_user) if write.end_user else None,
        **extra,
    )
    try:
        store.insert(record)
    except Exception:
        if not secrets.delete_quietly(arn):
            logger.error("secret left behind by a failed create", secret_arn=arn)
        raise
    logger.info("connection created", provider_config_key=provider_config_key)
    publish_auth(record, "creation")
    return record


def _replace(store: ConnectionStore, secrets: SecretStore, current: ConnectionRecord, owner: str,
             write: CredentialWrite) -> ConnectionRecord:
    try:
        version = secrets.replace(current.secret_arn, write.secret_value)
    except Exception:
        store.release_lease(current, owner)
        raise
    update = {**write.changes, "secret_version": version, "updated_at": iso(utc_now()),
              "credentials_status": "valid", "credentials_error": None,
              "refresh_failed_at": None, "refresh_blocked_until": None}
    if write.metadata_json is not None:
        update["metadata_json"] = write.metadata_json
        update["revision"] = current.revision + 1
    if write.connection_config is not None:
        update["connection_config_json"] = json.dumps(write.connection_config)
    if write.end_user is not None:
        update["end_user_json"] = json.dumps(write.end_user)
    try:
        record = store.commit_credentials(current, owner, update)
    except Exception:
        _restore_previous_secret(secrets, current, version)
        store.release_lease(current, owner)
        raise
    logger.info("connection credentials replaced", provider_config_key=current.provider_config_key)
    publish_auth(record, "override")
    return record


def _restore_previous_secret(secrets: SecretStore, current: ConnectionRecord, failed: str) -> None:
    try:
        secrets.restore_version(current.secret_arn, current.secret_version, failed)
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller sees
        logger.error("previous credentials could not be made current again",
                     secret_arn=current.secret_arn, error_type=type(exc).__name__)


def get_connection(provider_config_key: str, connection_id: str) -> dict[str, Any]:
    """One connection, with one consistent read."""
    return connection_view(ConnectionStore().get(provider_config_key, connection_id))


def list_connections(provider_config_key: str | None, connection_id: str | None, limit: int,
                     cursor: str | None) -> dict[str, Any]:
    """One page of connections and the cursor of the next page (null on the last page)."""
    records, next_cursor = ConnectionStore().list(provider_config_key, connection_id, limit,
                                                  cursor)
    return {"connections": [connection_view(r) for r in records], "next_cursor": next_cursor}


def delete_connection(provider_config_key: str, connection_id: str) -> None:
    """Delete a connection and schedule its secret's deletion; a failure restores the secret."""
    store, secrets = ConnectionStore(), SecretStore()
    record = store.get(provider_config_key, connection_id)
    # Read before the secret is scheduled for deletion; revoke only once the delete succeeded,
    # so a failed delete never leaves a live connection holding a revoked token.
    revocation = verification.prepare_revocation(record)
    remove_connection(store, secrets, record)
    verification.revoke(revocation)


def remove_connection(store: ConnectionStore, secrets: SecretStore,
                      record: ConnectionRecord) -> None:
    """Delete an already-read connection; shared with integration deletion."""
    secrets.delete(record.secret_arn)
    try:
        store.delete(record)
    except Exception:
        try:
            secrets.undelete(record.secret_arn)
        except Exception as exc:  # noqa: BLE001 - the original failure is what the caller sees
            logger.error("secret of a surviving connection stays scheduled for deletion",
                         secret_arn=record.secret_arn, error_type=type(exc).__name__)
        raise
    logger.info("connection deleted", provider_config_key=record.provider_config_key)
    publish_auth(record, "deletion")


def update_metadata(provider_config_key: str, connection_id: str, metadata: Any, *,
                    merge: bool) -> dict[str, Any]:
    """Merge (PATCH) or replace (PUT) a connection's metadata, retrying concurrent edits."""
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata: must be a JSON object")
    store = ConnectionStore()
    for _ in range(5):
        record = store.get(provider_config_key, connection_id)
        merged = {**json.loads(record.metadata_json), **metadata} if merge else metadata
        try:
            updated = store.update_metadata(record, encode_metadata(merged), iso(utc_now()))
        except Conflict:
            continue
        return connection_view(updated)
    raise ConnectionBusy("metadata is being changed concurrently; retry shortly")
