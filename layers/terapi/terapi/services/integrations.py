"""Integrations: an application's configuration of a catalog provider, with its OAuth client.

The OAuth client secret goes to Secrets Manager; the item keeps only its ARN. Deleting an
integration first marks it as being deleted (so no connection can join it), then deletes its
connections one by one, its client secret, and finally the item, so an interrupted deletion
can simply be called again.
"""

from __future__ import annotations

import json
from typing import Any

from terapi.errors import InvalidRequest, StoreUnavailable
from terapi.models import (
    CreateIntegrationRequest,
    UpdateIntegrationRequest,
    iso,
    normalise_scopes,
    utc_now,
)
from terapi.observability import logger
from terapi.services.views import integration_view
from terapi.store.integrations import IntegrationRecord, IntegrationStore
from terapi.store.secrets import SecretStore

GENERIC_PROVIDERS = ("oauth2", "oauth2-cc")
_GENERIC_FIELDS = ("authorization_url", "token_url", "api_base_url", "scope_separator", "pkce",
                   "token_auth_method")
DELETE_TIME_RESERVE_MS = 5000


def provider_for(integration: IntegrationRecord) -> Any:
    """The catalog entry behind an integration, with a generic provider's own settings applied."""
    from terapi.catalog import get_provider

    provider = get_provider(integration.provider)
    if provider is None:
        raise InvalidRequest(f"provider '{integration.provider}' is no longer in the catalog",
                             code="unknown_provider")
    settings = json.loads(integration.settings_json)
    return provider.model_copy(update=settings) if settings else provider


def create_integration(request: CreateIntegrationRequest) -> dict[str, Any]:
    """Create an integration; the client secret is stored before the item that points to it."""
    from terapi.catalog import get_provider

    if get_provider(request.provider) is None:
        raise InvalidRequest(f"provider: '{request.provider}' is not in the catalog "
                             "(see GET /providers)", code="unknown_provider")
    settings = generic_settings(request)
    now = iso(utc_now())
    record = IntegrationRecord(
        provider_config_key=request.provider_config_key,
        provider=request.provider,
        created_at=now,
        updated_at=now,
        oauth_client_id=request.oauth_client_id,
        oauth_scopes=",".join(normalise_scopes(request.oauth_scopes)),
        settings_json=json.dumps(settings),
    )
    secrets = SecretStore()
    if request.oauth_client_secret is not None:
        record.client_secret_arn, record.client_secret_version = secrets.create(
            "integrations", {"client_secret": request.oauth_client_secret},
            {"provider_config_key": request.provider_config_key})
    try:
        IntegrationStore().insert(record)
    except Exception:
        if record.client_secret_arn and not secrets.delete_quietly(record.client_secret_arn):
            logger.error("secret left behind by a failed create",
                         secret_arn=record.client_secret_arn)
        raise
    logger.info("integration created", provider_config_key=record.provider_config_key,
                provider=record.provider)
    return integration_view(record)


def generic_settings(request: CreateIntegrationRequest) -> dict[str, Any]:
    """The OAuth settings a generic provider's integration brings; other providers take none."""
    settings = {f: getattr(request, f) for f in _GENERIC_FIELDS if getattr(request, f) is not None}
    if request.provider in GENERIC_PROVIDERS:
        needed = ("token_url",) if request.provider == "oauth2-cc" else ("authorization_url",
                                                                           "token_url")
        for required in needed:
            if required not in settings:
                raise InvalidRequest(f"{required}: is required for the generic "
                                     f"'{request.provider}' provider")
    elif settings:
        raise InvalidRequest(f"{next(iter(settings))}: only the generic providers "
                             f"({', '.join(GENERIC_PROVIDERS)}) take their own OAuth settings")
    return settings


def get_integration(provider_config_key: str) -> dict[str, Any]:
    """One integration."""
    return integration_view(IntegrationStore().get(provider_config_key))


def list_integrations(limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of integrations and the cursor of the next page (null on the last page)."""
    records, next_cursor = IntegrationStore().list(limit, cursor)
    return {"integrations": [integration_view(r) for r in records], "next_cursor": next_cursor}


def update_integration(provider_config_key: str,
                       request: UpdateIntegrationRequest) -> dict[str, Any]:
    """Change the OAuth client id, secret or scopes; a failed item write restores the secret."""
    store, secrets = IntegrationStore(), SecretStore()
    current = store.get(provider_config_key)
    changes: dict[str, Any] = {"updated_at": iso(utc_now())}
    if request.oauth_client_id is not None:
        changes["oauth_client_id"] = request.oauth_client_id
    if request.oauth_scopes is not None:
        changes["oauth_scopes"] = ",".join(normalise_scopes(request.oauth_scopes))
    created_arn = replaced_version = None
    if request.oauth_client_secret is not None:
        value = {"client_secret": request.oauth_client_secret}
        if current.client_secret_arn:
            replaced_version = secrets.replace(current.client_secret_arn, value)
            changes["client_secret_version"] = replaced_version
        else:
            created_arn, version = secrets.create("integrations", value,
                                                  {"provider_config_key": provider_config_key})
            changes.update(client_secret_arn=created_arn, client_secret_version=version)
    try:
        record = store.update(provider_config_key, changes)
    except Exception:
        if created_arn and not secrets.delete_quietly(created_arn):
            logger.error("secret left behind by a failed update", secret_arn=created_arn)
        if replaced_version and current.client_secret_arn and current.client_secret_version:
            secrets.restore_version(current.client_secret_arn, current.client_secret_version,
                                    replaced_version)
        raise
    logger.info("integration updated", provider_config_key=provider_config_key)
    return integration_view(record)


def delete_integration(provider_config_key: str, remaining_ms: Any = None) -> None:
    """Delete an integration, its connections and every secret they own, revoking each
    connection's token at the provider as deleting it alone would (best effort).

    Stops early with a 503 when the function is about to run out of time; calling again
    continues where it stopped.
    """
    from terapi.services.connections import remove_connection
    from terapi.services.verification import prepare_revocation, revoke
    from terapi.store.connections import ConnectionStore

    store, connections, secrets = IntegrationStore(), ConnectionStore(), SecretStore()
    record = store.mark_deleting(provider_config_key)
    while True:
        page, _ = connections.list(provider_config_key, None, 100, None)
        if not page:
            break
        for connection in page:
            if remaining_ms is not None and remaining_ms() < DELETE_TIME_RESERVE_MS:
                raise StoreUnavailable("integration deletion is still in progress; call DELETE "
                                       "again to continue", code="deletion_in_progress")
            revocation = prepare_revocation(connection, record)
            remove_connection(connections, secrets, connection)
            revoke(revocation)
    if record.client_secret_arn:
        secrets.delete(record.client_secret_arn)
    store.delete(provider_config_key)
    logger.info("integration deleted", provider_config_key=provider_config_key)


def client_secret(integration: IntegrationRecord) -> str | None:
    """Read an integration's OAuth client secret (for the OAuth flow and token refresh)."""
    if not integration.client_secret_arn:
        return None
    return SecretStore().read(integration.client_secret_arn)["client_secret"]
