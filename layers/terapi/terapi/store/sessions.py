"""Connect sessions and OAuth states: short-lived items in the single table, keyed by a hash.

A connect session is `pk=S#<sha256 of its token>, sk=S`; an OAuth state is
`pk=ST#<sha256 of the state>, sk=ST`. Neither raw value is ever stored, so a table read does not
yield a usable token. Both carry `expires_at` (checked on every read, since DynamoDB's TTL
deletes items up to days late and moto never does) and `expires_ttl` for the TTL sweeper. A state
is consumed by one conditional update, which makes it single-use under concurrent replays.

An OAuth 1.0a attempt is stored as a state too, keyed by the hash of its request token (the
callback carries `oauth_token`, not `state`). It keeps the request token's secret, which the
access-token request must be signed with: like the PKCE verifier, that secret lives at most 10
minutes, serves one exchange, and is removed by the same write that consumes the state.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from terapi.store.dynamo import dynamodb, from_item, is_condition_failure, table_name, to_item

SESSION_SK = "S"
STATE_SK = "ST"
# Kept a day past expiry so a late replay is told apart from a forgery.
TTL_GRACE_SECONDS = 86400


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a session token or state is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class ConnectSessionRecord:
    """A connect session: who is connecting, to which integrations, and where to send them."""

    token_hash: str
    connection_id: str
    allowed_integrations_json: str
    created_at: str
    expires_at: int
    metadata_json: str | None = None
    end_user_json: str | None = None
    success_url: str | None = None
    error_url: str | None = None
    origin: str | None = None
    webhook_url: str | None = None

    def is_expired(self, now: float | None = None) -> bool:
        """True once the session's lifetime is over, whether or not TTL has removed it."""
        return (time.time() if now is None else now) >= self.expires_at


@dataclass
class OAuthStateRecord:
    """One authorization attempt: its session, integration, PKCE verifier and redirect URI.

    `auth_mode` is `oauth1` for an OAuth 1.0a attempt, whose `request_token_secret` is kept until
    the callback consumes it.
    """

    state_hash: str
    session_hash: str
    provider_config_key: str
    provider: str
    client_id: str
    connection_id: str
    redirect_uri: str
    connection_config_json: str
    created_at: str
    expires_at: int
    code_verifier: str | None = None
    success_url: str | None = None
    error_url: str | None = None
    origin: str | None = None
    consumed_at: str | None = None
    auth_mode: str = "oauth2"
    request_token_secret: str | None = None

    def is_expired(self, now: float | None = None) -> bool:
        """True once the state may no longer complete an authorization."""
        return (time.time() if now is None else now) >= self.expires_at


class StateNotConsumable(Exception):
    """The state is unknown, or it was already consumed (`replayed` says which)."""

    def __init__(self, replayed: bool):
        super().__init__("state already used" if replayed else "state unknown")
        self.replayed = replayed


class SessionStore:
    """Create and read connect sessions; create and consume OAuth states."""

    def __init__(self) -> None:
        self._db = dynamodb()
        self._table = table_name()

    def put_session(self, record: ConnectSessionRecord) -> None:
        """Store a new session; a (practically impossible) hash collision fails loudly."""
        values = {k: v for k, v in asdict(record).items() if k != "token_hash"}
        item = to_item({**values, "pk": f"S#{record.token_hash}", "sk": SESSION_SK,
                        "expires_ttl": record.expires_at + TTL_GRACE_SECONDS})
        self._db.put_item(TableName=self._table, Item=item,
                          ConditionExpression="attribute_not_exists(pk)")

    def find_session(self, session_hash: str) -> ConnectSessionRecord | None:
        """The session stored under this hash, expired or not, or `None`."""
        reply = self._db.get_item(TableName=self._table, ConsistentRead=True,
                                  Key={"pk": {"S": f"S#{session_hash}"},
                                       "sk": {"S": SESSION_SK}})
        item = reply.get("Item")
        if not item:
            return None
        return _record(ConnectSessionRecord, item, token_hash=session_hash)

    def put_state(self, record: OAuthStateRecord) -> None:
        """Store a new, unconsumed state."""
        values = {k: v for k, v in asdict(record).items() if k != "state_hash"}
        item = to_item({**values, "pk": f"ST#{record.state_hash}", "sk": STATE_SK,
                        "expires_ttl": record.expires_at + TTL_GRACE_SECONDS})
        self._db.put_item(TableName=self._table, Item=item,
                          ConditionExpression="attribute_not_exists(pk)")

    def consume_state(self, state_hash: str, consumed_at: str) -> OAuthStateRecord:
        """Mark a state used, exactly once, and return it as it was (secrets included).

        The PKCE verifier and an OAuth 1.0a request token secret are removed in the same write,
        so a consumed state holds no secret.
        Raises `StateNotConsumable` for an unknown or already consumed state.
        """
        key = {"pk": {"S": f"ST#{state_hash}"}, "sk": {"S": STATE_SK}}
        try:
            reply = self._db.update_item(
                TableName=self._table, Key=key,
                UpdateExpression="SET consumed_at = :now "
                                 "REMOVE code_verifier, request_token_secret",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(consumed_at)",
                ExpressionAttributeValues={":now": {"S": consumed_at}},
                ReturnValues="ALL_OLD",
            )
        except Exception as exc:
            if not is_condition_failure(exc):
                raise
            current = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True)
            raise StateNotConsumable(replayed="Item" in current) from None
        return _record(OAuthStateRecord, reply["Attributes"], state_hash=state_hash)


def _record(cls: type[Any], item: dict[str, Any], **extra: Any) -> Any:
    values = {**from_item(item), **extra}
    return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})
