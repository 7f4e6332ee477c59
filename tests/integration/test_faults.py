"""Nothing is lost on faults: a failure injected at each AWS call of create, replace and delete.

Each operation first runs once to record the AWS calls it makes (botocore's `before-call`
events); then, for every position in that sequence, a fresh deployment runs the operation with
that call failing, and the stores are checked: no orphaned secret, no item pointing at a missing
secret, an exact connection count, and after a failed replace the previous credentials intact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from tests.conftest import ApiClient
from tests.support.aws_calls import AwsCalls

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


def setup_integration(api: ApiClient, key: str) -> None:
    status, _, _ = api.request("POST", "/integration", json={
        "provider_config_key": key, "provider": "github", "oauth_client_id": "id",
        "oauth_client_secret": "secret"})
    assert status == 200


def import_credentials(api: ApiClient, key: str, token: str) -> int:
    status, _, _ = api.request("POST", "/connection", json={
        "connection_id": "user/1 😀", "provider_config_key": key,
        "credentials": {"access_token": token, "refresh_token": f"{token}-refresh",
                        "expires_in": 3600}})
    return status


def delete_connection(api: ApiClient, key: str) -> int:
    path = f"/connection/{quote('user/1 😀', safe='')}?provider_config_key={key}"
    return api.request("DELETE", path)[0]


def stored_state(key: str) -> dict[str, Any]:
    """One integration's connection items, live connection secrets with values, and count."""
    db = boto3.client("dynamodb")
    table = db.list_tables()["TableNames"][0]
    items = db.query(TableName=table, KeyConditionExpression="pk = :pk",
                     ExpressionAttributeValues={":pk": {"S": f"I#{key}"}})["Items"]
    connections = [i for i in items if i["sk"]["S"].startswith("C#")]
    integration = next(i for i in items if i["sk"]["S"] == "I")
    sm = boto3.client("secretsmanager")
    live = [s["ARN"] for s in sm.list_secrets()["SecretList"] if "/connections/" in s["Name"]
            and {"Key": "terapi:provider_config_key", "Value": key} in s.get("Tags", [])]
    values = {arn: json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
              for arn in live}
    return {"connections": connections, "live_secrets": values,
            "count": int(integration.get("connection_count", {"N": "0"})["N"])}


def assert_consistent(state: dict[str, Any]) -> None:
    referenced = {c["secret_arn"]["S"] for c in state["connections"]}
    assert set(state["live_secrets"]) == referenced, "orphaned or missing secret"
    assert state["count"] == len(state["connections"]), "connection_count drifted"
    for item in state["connections"]:
        assert "lease_owner" not in item, "a failed write left the lease held"


@dataclass
class Scenario:
    """An operation under test, what precedes it, and what must hold when it fails."""

    before: Callable[[ApiClient, str], None]
    operation: Callable[[ApiClient, str], int]
    check_after_failure: Callable[[dict[str, Any]], None]


def _nothing_created(state: dict[str, Any]) -> None:
    assert state["connections"] == [] and state["live_secrets"] == {}


def _previous_credentials_intact(state: dict[str, Any]) -> None:
    (value,) = state["live_secrets"].values()
    assert value["access_token"] == "first"
    assert value["refresh_token"] == "first-refresh"


def _all_or_nothing(state: dict[str, Any]) -> None:
    if state["connections"]:
        (value,) = state["live_secrets"].values()
        assert value["access_token"] == "first"


def _with_connection(api: ApiClient, key: str) -> None:
    setup_integration(api, key)
    assert import_credentials(api, key, "first") == 200


SCENARIOS = {
    "create": Scenario(setup_integration, lambda api, key: import_credentials(api, key, "first"),
                       _nothing_created),
    "replace": Scenario(_with_connection,
                        lambda api, key: import_credentials(api, key, "second"),
                        _previous_credentials_intact),
    "delete": Scenario(_with_connection, delete_connection, _all_or_nothing),
}


def recorded_calls(api: ApiClient, scenario: Scenario, key: str) -> list[str]:
    scenario.before(api, key)
    with AwsCalls() as recorder:
        assert scenario.operation(api, key) in (200, 204)
    return recorder.calls


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_fault_at_any_call_loses_nothing(api: ApiClient, name: str) -> None:
    scenario = SCENARIOS[name]
    calls = recorded_calls(api, scenario, "recording")
    assert any("Secret" in c for c in calls) and any("Item" in c for c in calls), calls

    for position, call in enumerate(calls):
        key = f"{name}-{position}"
        scenario.before(api, key)
        with AwsCalls(fail_at=position):
            status = scenario.operation(api, key)
        state = stored_state(key)

        # Best-effort reads (such as preparing a revocation) may fail without failing the
        # operation; whatever the status, the stores must be consistent.
        assert status in (503, 200, 204), f"{name} failing at {call} answered {status}"
        assert_consistent(state)
        if status == 503:
            scenario.check_after_failure(state)


@pytest.mark.parametrize("name", ["create", "replace"])
def test_the_operation_succeeds_when_retried_after_a_fault(api: ApiClient, name: str) -> None:
    scenario = SCENARIOS[name]
    calls = recorded_calls(api, scenario, "recording")
    last_write = max(i for i, call in enumerate(calls) if call in DYNAMODB_WRITES)
    scenario.before(api, name)
    with AwsCalls(fail_at=last_write):
        assert scenario.operation(api, name) == 503

    status = scenario.operation(api, name)
    state = stored_state(name)

    assert status == 200
    assert_consistent(state)
    (value,) = state["live_secrets"].values()
    assert value["access_token"] == ("first" if name == "create" else "second")
