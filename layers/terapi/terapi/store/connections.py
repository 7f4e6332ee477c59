"""Connection items and the credentials lease.

Every write of a connection's credentials (import, replace, token refresh) happens under a lease:
a conditional write of `lease_owner`/`lease_until` on the connection item. Only the holder may
commit new credentials, a lease whose holder died expires on its own, and the commit bumps
`credentials_version`, which is what warm containers compare their cached secret against.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from terapi.errors import Conflict, ConnectionNotFound, IntegrationNotFound
from terapi.store.dynamo import (
    CONNECTION_ID_INDEX,
    KIND_INDEX,
    cancelled_at,
    connection_sk,
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
class ConnectionRecord:
    """One connection as stored. JSON documents are kept as strings (see `dynamo`)."""

    provider_config_key: str
    connection_id: str
    provider: str
    created_at: str
    updated_at: str
    secret_arn: str
    secret_version: str
    credentials_type: str
    credentials_version: int = 1
    credentials_status: str = "valid"
    credentials_error: str | None = None
    expires_at: str | None = None
    last_refreshed_at: str | None = None
    metadata_json: str = "{}"
    connection_config_json: str = "{}"
    end_user_json: str | None = None
    revision: int = 1
    lease_owner: str | None = None
    lease_until: int | None = None
    refresh_failed_at: str | None = None
    refresh_blocked_until: int | None = None
    refresh_shard: str | None = None
    refresh_due_at: int | None = None
    webhook_url: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ConnectionRecord:
        """Build a record from a DynamoDB item, ignoring attributes it does not know."""
        values = from_item(item)
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    def to_item(self) -> dict[str, Any]:
        """The full DynamoDB item, index attributes included."""
        return to_item({
            **asdict(self),
            "pk": integration_pk(self.provider_config_key),
            "sk": connection_sk(self.connection_id),
            "kind": "connection",
            "kind_sort": f"{self.created_at}|{self.provider_config_key}",
        })


class LeaseHeld(Exception):
    """Another writer holds the connection's credentials lease."""

    def __init__(self, record: ConnectionRecord):
        super().__init__("credentials lease held")
        self.record = record


class ConnectionStore:
    """Reads and writes connection items; credential writes go through the lease."""

    def __init__(self) -> None:
        self._db = dynamodb()
        self._table = table_name()

    @staticmethod
    def key(provider_config_key: str, connection_id: str) -> dict[str, Any]:
        """The DynamoDB key of a connection."""
        return {"pk": {"S": integration_pk(provider_config_key)},
                "sk": {"S": connection_sk(connection_id)}}

    def find(self, provider_config_key: str, connection_id: str) -> ConnectionRecord | None:
        """Read a connection with a strongly consistent read, or `None`."""
        reply = self._db.get_item(TableName=self._table, ConsistentRead=True,
                                  Key=self.key(provider_config_key, connection_id))
        item = reply.get("Item")
        return ConnectionRecord.from_item(item) if item else None

    def get(self, provider_config_key: str, connection_id: str) -> ConnectionRecord:
        """Read a connection or raise `ConnectionNotFound`."""
        record = self.find(provider_config_key, connection_id)
        if record is None:
            raise not_found(provider_config_key, connection_id)
        return record

    def list(self, provider_config_key: str | None, connection_id: str | None, limit: int,
             cursor: str | None) -> tuple[list[ConnectionRecord], str | None]:
        """One page of connections through a single `Query`, whichever filters are given."""
        scope = f"connections|{provider_config_key}|{connection_id}"
        query: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        if provider_config_key is not None:
            query["KeyConditionExpression"] = "pk = :pk AND " + (
                "sk = :sk" if connection_id is not None else "begins_with(sk, :sk)")
            query["ExpressionAttributeValues"] = {
                ":pk": {"S": integration_pk(provider_config_key)},
                ":sk": {"S": connection_sk(connection_id if connection_id is not None else "")},
            }
        elif connection_id is not None:
            query["IndexName"] = CONNECTION_ID_INDEX
            query["KeyConditionExpression"] = "connection_id = :id"
            query["ExpressionAttributeValues"] = {":id": {"S": connection_id}}
        else:
            query["IndexName"] = KIND_INDEX
            query["KeyConditionExpression"] = "kind = :kind"
            query["ExpressionAttributeValues"] = {":kind": {"S": "connection"}}
        start = decode_cursor(cursor, scope)
        if start:
            query["ExclusiveStartKey"] = start
        reply = self._db.query(**query)
        records = [ConnectionRecord.from_item(i) for i in reply.get("Items", [])]
        return records, encode_cursor(reply.get("LastEvaluatedKey"), scope)

    def insert(self, record: ConnectionRecord) -> None:
        """Write a new connection and count it on its integration, in one transaction."""
        integration_key = {"pk": {"S": integration_pk(record.provider_config_key)},
                           "sk": {"S": "I"}}
        try:
            self._db.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "Item": record.to_item(),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": self._table, "Key": integration_key,
                            "UpdateExpression": "ADD connection_count :one",
                            "ConditionExpression": "attribute_exists(pk) AND #s = :active",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":one": {"N": "1"},
                                                          ":active": {"S": "active"}}}},
            ])
        except Exception as exc:
            reasons = cancelled_at(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise Conflict("connection already exists", code="connection_exists") from exc
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise IntegrationNotFound(f"no integration with provider_config_key "
                                          f"'{record.provider_config_key}'") from exc
            raise

    def delete(self, record: ConnectionRecord) -> None:
        """Remove a connection and uncount it on its integration, in one transaction."""
        integration_key = {"pk": {"S": integration_pk(record.provider_config_key)},
                           "sk": {"S": "I"}}
        try:
            self._db.transact_write_items(TransactItems=[
                {"Delete": {"TableName": self._table,
                            "Key": self.key(record.provider_config_key, record.connection_id),
                            "ConditionExpression": "attribute_exists(pk)"}},
                {"Update": {"TableName": self._table, "Key": integration_key,
                            "UpdateExpression": "ADD connection_count :minus_one",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}}}},
            ])
        except Exception as exc:
            if cancelled_at(exc)[:1] == ["ConditionalCheckFailed"]:
                raise not_found(record.provider_config_key, record.connection_id) from exc
            raise

    def acquire_lease(self, provider_config_key: str, connection_id: str, owner: str,
                      seconds: float) -> ConnectionRecord:
        """Take the credentials lease; raise `LeaseHeld` or `ConnectionNotFound` if we cannot.

        `lease_until` is in epoch milliseconds, so short leases (tests, retries) stay precise.
        """
        now = int(time.time() * 1000)
        try:
            reply = self._db.update_item(
                TableName=self._table,
                Key=self.key(provider_config_key, connection_id),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression="attribute_exists(pk) AND "
                                    "(attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeValues={":owner": {"S": owner},
                                           ":until": {"N": str(now + int(seconds * 1000))},
                                           ":now": {"N": str(now)}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if not is_condition_failure(exc):
                raise
            # With ALL_OLD, a refused write returns the item when it exists: no item means
            # there is no connection, and no second read is needed to tell the two apart.
            old = getattr(exc, "response", {}).get("Item")
            if not old:
                raise not_found(provider_config_key, connection_id) from exc
            raise LeaseHeld(ConnectionRecord.from_item(old)) from exc
        return ConnectionRecord.from_item(reply["Attributes"])

    def commit_credentials(self, record: ConnectionRecord, owner: str,
                           changes: dict[str, Any]) -> ConnectionRecord:
        """Apply credential changes as the lease holder, bump the version, release the lease."""
        request = self._lease_holder_update(record, owner, changes, bump_version=True)
        try:
            reply = self._db.update_item(**request, ReturnValues="ALL_NEW")
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict("the credentials lease was lost before the write completed",
                               code="lease_lost") from exc
            raise
        return ConnectionRecord.from_item(reply["Attributes"])

    def release_lease(self, record: ConnectionRecord, owner: str,
                      changes: dict[str, Any] | None = None) -> None:
        """Give the lease back without new credentials, optionally recording non-secret state."""
        request = self._lease_holder_update(record, owner, changes or {}, bump_version=False)
        try:
            self._db.update_item(**request)
        except Exception as exc:
            if not is_condition_failure(exc):
                raise

    def _lease_holder_update(self, record: ConnectionRecord, owner: str,
                             changes: dict[str, Any], *, bump_version: bool) -> dict[str, Any]:
        """An UpdateItem request that only the lease holder can apply; `None` values are removed."""
        present = {k: v for k, v in changes.items() if v is not None}
        removed = [k for k, v in changes.items() if v is None]
        names = {f"#f{i}": name for i, name in enumerate([*present, *removed])}
        values: dict[str, Any] = {f":v{i}": to_attr(v) for i, v in enumerate(present.values())}
        values[":owner"] = {"S": owner}
        sets = [f"#f{i} = :v{i}" for i in range(len(present))]
        if bump_version:
            sets.append("credentials_version = credentials_version + :one")
            values[":one"] = {"N": "1"}
        drops = ["lease_owner", "lease_until"]
        drops += [f"#f{i}" for i in range(len(present), len(present) + len(removed))]
        expression = (f"SET {', '.join(sets)} " if sets else "") + f"REMOVE {', '.join(drops)}"
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self.key(record.provider_config_key, record.connection_id),
            "UpdateExpression": expression,
            "ConditionExpression": "lease_owner = :owner",
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        return request

    def update_metadata(self, record: ConnectionRecord, metadata_json: str, updated_at: str) -> (
            ConnectionRecord):
        """Write new metadata if nobody changed it since `record` was read (optimistic)."""
        try:
            reply = self._db.update_item(
                TableName=self._table,
                Key=self.key(record.provider_config_key, record.connection_id),
                UpdateExpression="SET metadata_json = :m, updated_at = :u, "
                                 "revision = revision + :one",
                ConditionExpression="revision = :rev",
                ExpressionAttributeValues={":m": {"S": metadata_json}, ":u": {"S": updated_at},
                                           ":one": {"N": "1"},
                                           ":rev": {"N": str(record.revision)}},
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict("metadata changed concurrently", code="metadata_conflict") from exc
            raise
        return ConnectionRecord.from_item(reply["Attributes"])


def not_found(provider_config_key: str, connection_id: str) -> ConnectionNotFound:
    """The error for a connection that does not exist under an integration."""
    return ConnectionNotFound(f"no connection '{connection_id}' for integration "
                              f"'{provider_config_key}'")
