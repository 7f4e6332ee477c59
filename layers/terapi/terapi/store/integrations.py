"""Integration items: the provider configuration an application's connections belong to.

`connection_count` lives on the integration item and changes only inside the same transaction
that writes or deletes a connection, so it is exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from terapi.errors import Conflict, IntegrationNotFound
from terapi.store.dynamo import (
    INTEGRATION_SK,
    KIND_INDEX,
    decode_cursor,
    dynamodb,
    encode_cursor,
    from_item,
    integration_pk,
    is_condition_failure,
    table_name,
    to_attr,
    to_item,
)


@dataclass
class IntegrationRecord:
    """One integration as stored; `settings_json` holds the generic provider's OAuth settings."""

    provider_config_key: str
    provider: str
    created_at: str
    updated_at: str
    oauth_client_id: str | None = None
    oauth_scopes: str = ""
    client_secret_arn: str | None = None
    client_secret_version: str | None = None
    settings_json: str = "{}"
    connection_count: int = 0
    status: str = "active"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> IntegrationRecord:
        """Build a record from a DynamoDB item."""
        values = from_item(item)
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and k != "extra"}
        return cls(**known)


class IntegrationStore:
    """Reads and writes integration items."""

    def __init__(self) -> None:
        self._db = dynamodb()
        self._table = table_name()

    def key(self, provider_config_key: str) -> dict[str, Any]:
        """The DynamoDB key of an integration."""
        return {"pk": {"S": integration_pk(provider_config_key)}, "sk": {"S": INTEGRATION_SK}}

    def get(self, provider_config_key: str) -> IntegrationRecord:
        """Read an integration that is not being deleted, or raise `IntegrationNotFound`."""
        reply = self._db.get_item(
            TableName=self._table, Key=self.key(provider_config_key), ConsistentRead=True
        )
        item = reply.get("Item")
        if not item or item.get("status", {}).get("S") == "deleting":
            raise IntegrationNotFound(f"no integration with provider_config_key "
                                      f"'{provider_config_key}'")
        return IntegrationRecord.from_item(item)

    def list(self, limit: int, cursor: str | None) -> tuple[list[IntegrationRecord], str | None]:
        """One page of integrations ordered by key."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": KIND_INDEX,
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": {"S": "integration"}},
            "Limit": limit,
        }
        start = decode_cursor(cursor, "integrations")
        if start:
            query["ExclusiveStartKey"] = start
        reply = self._db.query(**query)
        records = [IntegrationRecord.from_item(i) for i in reply.get("Items", [])]
        return records, encode_cursor(reply.get("LastEvaluatedKey"), "integrations")

    def insert(self, record: IntegrationRecord) -> None:
        """Write a new integration; an existing key (even one being deleted) is a conflict."""
        values = asdict(record)
        values.pop("extra")
        item = to_item({**values, "pk": integration_pk(record.provider_config_key),
                        "sk": INTEGRATION_SK, "kind": "integration",
                        "kind_sort": record.provider_config_key})
        try:
            self._db.put_item(TableName=self._table, Item=item,
                              ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict(f"an integration with provider_config_key "
                               f"'{record.provider_config_key}' already exists",
                               code="integration_exists") from exc
            raise

    def update(self, provider_config_key: str, changes: dict[str, Any]) -> IntegrationRecord:
        """Set fields on an active integration and return the updated record."""
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": to_attr(value) for i, value in enumerate(changes.values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
        try:
            reply = self._db.update_item(
                TableName=self._table,
                Key=self.key(provider_config_key),
                UpdateExpression=f"SET {sets}",
                ConditionExpression="attribute_exists(pk) AND #status = :active",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":active": {"S": "active"}},
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise IntegrationNotFound(f"no integration with provider_config_key "
                                          f"'{provider_config_key}'") from exc
            raise
        return IntegrationRecord.from_item(reply["Attributes"])

    def mark_deleting(self, provider_config_key: str) -> IntegrationRecord:
        """Flag an integration as being deleted so no new connection can join it."""
        try:
            reply = self._db.update_item(
                TableName=self._table,
                Key=self.key(provider_config_key),
                UpdateExpression="SET #status = :deleting",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":deleting": {"S": "deleting"}},
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise IntegrationNotFound(f"no integration with provider_config_key "
                                          f"'{provider_config_key}'") from exc
            raise
        return IntegrationRecord.from_item(reply["Attributes"])

    def delete(self, provider_config_key: str) -> None:
        """Remove the integration item once its connections and secrets are gone."""
        self._db.delete_item(TableName=self._table, Key=self.key(provider_config_key))
