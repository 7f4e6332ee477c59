"""DynamoDB plumbing shared by the stores: item keys, attribute conversion, cursors, errors.

One table holds everything. An integration is `pk=I#<key>, sk=I`; its connections share that
partition as `sk=C#<connection id>`, so deleting or listing an integration's connections is one
`Query`. Items use only strings, numbers and booleans: JSON documents (metadata) are stored as
strings so their exact JSON types and size survive unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from terapi.aws import client
from terapi.errors import InvalidRequest
from terapi.settings import get_settings

INTEGRATION_SK = "I"
KIND_INDEX = "by_kind"
CONNECTION_ID_INDEX = "by_connection_id"
REFRESH_INDEX = "by_refresh_due"


def integration_pk(provider_config_key: str) -> str:
    """Partition key of an integration and all its connections."""
    return f"I#{provider_config_key}"


def connection_sk(connection_id: str) -> str:
    """Sort key of a connection inside its integration's partition."""
    return f"C#{connection_id}"


def table_name() -> str:
    """The deployment's table."""
    return get_settings().table_name


def dynamodb() -> Any:
    """The shared DynamoDB client."""
    return client("dynamodb")


def to_item(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Convert plain values (str, int, bool) to DynamoDB attribute values; `None` is omitted."""
    return {name: to_attr(value) for name, value in values.items() if value is not None}


def to_attr(value: Any) -> dict[str, Any]:
    """Convert one plain value to a DynamoDB attribute value."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"unsupported attribute type {type(value).__name__}")


def from_item(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Convert a DynamoDB item back to plain values."""
    values: dict[str, Any] = {}
    for name, attr in item.items():
        if "S" in attr:
            values[name] = attr["S"]
        elif "N" in attr:
            values[name] = int(attr["N"])
        elif "BOOL" in attr:
            values[name] = attr["BOOL"]
    return values


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore `ClientError`, or an empty string."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def is_condition_failure(exc: Exception) -> bool:
    """True when a write was refused by its condition (alone or inside a transaction)."""
    code = error_code(exc)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def cancelled_at(exc: Exception) -> list[str]:
    """The per-item cancellation codes of a failed transaction, in request order."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
    return [r.get("Code", "None") for r in reasons]


def encode_cursor(last_key: dict[str, Any] | None, scope: str) -> str | None:
    """Turn DynamoDB's LastEvaluatedKey into an opaque cursor tied to the listing's filters."""
    if not last_key:
        return None
    raw = json.dumps({"s": scope, "k": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    """Read a cursor made by `encode_cursor` for the same filters; anything else is a 400."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        valid = data["s"] == scope and isinstance(key, dict) and all(
            isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
            for v in key.values()
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidRequest("cursor is not valid for this listing", code="invalid_cursor")
    return key
