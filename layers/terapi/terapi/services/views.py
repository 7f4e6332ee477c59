"""Reply shapes built from stored records; the only place that decides what a caller sees.

Neither view can include a secret: records hold secret ARNs, never secret values, and the ARN
itself is not shown.
"""

from __future__ import annotations

import json
from typing import Any

from terapi.store.connections import ConnectionRecord
from terapi.store.integrations import IntegrationRecord


def connection_view(record: ConnectionRecord) -> dict[str, Any]:
    """The seed's connection object plus non-secret credential status."""
    credentials: dict[str, Any] = {
        "type": record.credentials_type,
        "expires_at": record.expires_at,
        "status": record.credentials_status,
        "last_refreshed_at": record.last_refreshed_at,
    }
    if record.credentials_error:
        credentials["error"] = record.credentials_error
    view: dict[str, Any] = {
        "id": record.connection_id,
        "provider_config_key": record.provider_config_key,
        "provider": record.provider,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "metadata": json.loads(record.metadata_json),
        "connection_config": json.loads(record.connection_config_json),
        "credentials": credentials,
    }
    if record.end_user_json:
        view["end_user"] = json.loads(record.end_user_json)
    return view


def integration_view(record: IntegrationRecord) -> dict[str, Any]:
    """The contract's integration object plus its non-secret OAuth settings."""
    view: dict[str, Any] = {
        "unique_key": record.provider_config_key,
        "provider": record.provider,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "connection_count": record.connection_count,
        "oauth_client_id": record.oauth_client_id,
        "oauth_scopes": record.oauth_scopes,
        "has_oauth_client_secret": record.client_secret_arn is not None,
    }
    view.update(json.loads(record.settings_json))
    return view
