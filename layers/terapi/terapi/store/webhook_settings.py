"""Webhook configuration: the deployment's settings item, per-connection overrides, signing keys.

The settings item is `pk=CONFIG, sk=WEBHOOKS` in the single table: primary and secondary URL,
and the signing key's rotation state (`signing_key_version`, `key_rotated_at`,
`rotation_ends_at`). The signing keys themselves live in one Secrets Manager secret as
`{"current", "previous", "previous_until", "version"}`; its ARN comes from the template (an
environment variable), never from the item, so a table write cannot redirect signing to another
secret. A per-connection override is the `webhook_url` attribute of the connection item.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from terapi.aws import client
from terapi.store.connections import ConnectionRecord, ConnectionStore, not_found
from terapi.store.dynamo import dynamodb, from_item, is_condition_failure, table_name, to_attr

CONFIG_PK = "CONFIG"
WEBHOOKS_SK = "WEBHOOKS"


@dataclass
class WebhookSettingsRecord:
    """The deployment's webhook settings; an absent item reads as this record's defaults."""

    primary_url: str | None = None
    secondary_url: str | None = None
    signing_key_version: int = 0
    key_rotated_at: str | None = None
    rotation_ends_at: int | None = None
    updated_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> WebhookSettingsRecord:
        """Build a record from a DynamoDB item, ignoring attributes it does not know."""
        values = from_item(item)
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


class RotationConflict(Exception):
    """Another rotation changed the signing key version first."""


@dataclass(frozen=True)
class SigningKeys:
    """The signing keys as stored: the current one, and the previous one during a window."""

    current: str
    previous: str | None = None
    previous_until: int | None = None
    version: int = 0


class WebhookSettingsStore:
    """Reads and writes the settings item and the per-connection `webhook_url` override."""

    def __init__(self) -> None:
        self._db = dynamodb()
        self._table = table_name()
        self._key = {"pk": {"S": CONFIG_PK}, "sk": {"S": WEBHOOKS_SK}}

    def get(self) -> WebhookSettingsRecord:
        """The current settings (a consistent read), defaults when never configured."""
        reply = self._db.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        item = reply.get("Item")
        return WebhookSettingsRecord.from_item(item) if item else WebhookSettingsRecord()

    def put_urls(self, primary_url: str | None, secondary_url: str | None,
                 updated_at: str) -> WebhookSettingsRecord:
        """Replace both URLs (`None` removes one), leaving the key rotation state alone."""
        sets = ["updated_at = :u"]
        values: dict[str, Any] = {":u": {"S": updated_at}}
        removes = []
        for name, value in (("primary_url", primary_url), ("secondary_url", secondary_url)):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value}
        expression = "SET " + ", ".join(sets) + (f" REMOVE {', '.join(removes)}" if removes
                                                   else "")
        reply = self._db.update_item(TableName=self._table, Key=self._key,
                                     UpdateExpression=expression,
                                     ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        return WebhookSettingsRecord.from_item(reply["Attributes"])

    def claim_rotation(self, expected_version: int, rotated_at: str,
                       ends_at: int) -> WebhookSettingsRecord:
        """Bump the key version if nobody else did since `expected_version` was read."""
        try:
            reply = self._db.update_item(
                TableName=self._table, Key=self._key,
                UpdateExpression="SET signing_key_version = :next, key_rotated_at = :at, "
                                 "rotation_ends_at = :ends",
                ConditionExpression="attribute_not_exists(signing_key_version) OR "
                                    "signing_key_version = :seen",
                ExpressionAttributeValues={
                    ":next": to_attr(expected_version + 1), ":seen": to_attr(expected_version),
                    ":at": to_attr(rotated_at), ":ends": to_attr(ends_at)},
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise RotationConflict from exc
            raise
        return WebhookSettingsRecord.from_item(reply["Attributes"])

    def set_connection_url(self, provider_config_key: str, connection_id: str,
                           webhook_url: str | None, updated_at: str) -> ConnectionRecord:
        """Set or remove a connection's `webhook_url`; only an existing connection is changed."""
        update = "SET updated_at = :u" + (", webhook_url = :w" if webhook_url else
                                          " REMOVE webhook_url")
        values = {":u": {"S": updated_at}}
        if webhook_url:
            values[":w"] = {"S": webhook_url}
        try:
            reply = self._db.update_item(
                TableName=self._table, Key=ConnectionStore.key(provider_config_key, connection_id),
                UpdateExpression=update, ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except Exception as exc:
            if is_condition_failure(exc):
                raise not_found(provider_config_key, connection_id) from exc
            raise
        return ConnectionRecord.from_item(reply["Attributes"])


class SigningKeyStore:
    """Reads and replaces the signing keys secret."""

    def __init__(self, arn: str) -> None:
        self._client = client("secretsmanager")
        self._arn = arn

    def read(self) -> SigningKeys:
        """The stored keys; a plain-string secret (set by hand) is taken as the current key."""
        text = self._client.get_secret_value(SecretId=self._arn)["SecretString"]
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            return SigningKeys(current=text)
        return SigningKeys(current=value["current"], previous=value.get("previous"),
                           previous_until=value.get("previous_until"),
                           version=int(value.get("version", 0)))

    def write(self, keys: SigningKeys) -> None:
        """Store new keys as the secret's current version."""
        value = {"current": keys.current, "version": keys.version}
        if keys.previous:
            value.update(previous=keys.previous, previous_until=keys.previous_until)
        self._client.put_secret_value(SecretId=self._arn, SecretString=json.dumps(value),
                                      ClientRequestToken=str(uuid.uuid4()))
