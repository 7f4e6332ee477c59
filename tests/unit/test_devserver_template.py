"""The dev server reads routes, authorizers, environments and event sources from the template."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devserver import TEMPLATE_PATH
from devserver.functions import FunctionRunner, LambdaContext, load_function
from devserver.provision import provision, provision_resources
from devserver.template import Refs, load_template
from devserver.workers import (
    rate_seconds,
    schedule_interval,
    start_workers,
    succeeded_messages,
)

WORKER_APP = '''
"""A throwaway function for the dev server's tests."""
SEEN = []


def on_message(event, context):
    failures = []
    for record in event["Records"]:
        SEEN.append((record["body"], record["attributes"]["ApproximateReceiveCount"],
                     record["eventSourceARN"]))
        if record["body"] == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def on_tick(event, context):
    SEEN.append(event["detail-type"])
'''

TINY_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        QUEUE_URL: !Ref Jobs
        QUEUE_ARN: !GetAtt Jobs.Arn
        JOINED: !Join ["-", [a, !Ref Stage, !Select [1, !Split [",", "x,y,z"]]]]
        PICKED: !If [IsDev, yes-dev, not-dev]
        SUBBED: !Sub ["${AWS::StackName}/${Name}/${!Literal}", {Name: !Ref Stage}]
Resources:
  Dead: {Type: AWS::SQS::Queue}
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 2}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: app.on_message
      Environment: {Variables: {POWERTOOLS_SERVICE_NAME: worker, OWN: "1"}}
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
  Ticker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: app.on_tick
      Timeout: 2
      Events:
        Every5: {Type: Schedule, Properties: {Schedule: rate(5 minutes)}}
        Hourly: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour)}}
        Paused: {Type: Schedule, Properties: {Schedule: rate(1 minute), Enabled: false}}
        Public:
          Type: HttpApi
          Properties: {Path: /tick, Method: get, Auth: {Authorizer: NONE}}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A template with a queue, a DLQ, schedules and a fake function folder."""
    (tmp_path / "functions" / "worker").mkdir(parents=True)
    (tmp_path / "functions" / "worker" / "app.py").write_text(WORKER_APP)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(TINY_TEMPLATE))
    return path


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch):
    """An empty in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def test_real_template_routes_go_to_their_functions_behind_the_secret_key_authorizer():
    template = load_template(TEMPLATE_PATH)

    routes = {r.route_key: r for r in template.routes}

    assert routes["POST /connection"].function == "ConnectionsFunction"
    assert routes["GET /connection/{connection_id+}"].function == "ConnectionsFunction"
    assert routes["GET /integration/{provider_config_key}"].function == "IntegrationsFunction"
    authorizer = template.authorizer_for(routes["POST /connection"])
    assert authorizer is not None
    assert authorizer.function == "AuthorizerFunction"
    assert authorizer.simple_responses is True
    assert authorizer.payload_version == "2.0"


def test_real_template_environment_resolves_to_local_values(moto_env):
    template = load_template(TEMPLATE_PATH,
                             parameter_overrides={"PublicUrl": "http://localhost:4000"})
    refs = provision_resources(template, secret_key="k").refs

    env = template.function_environment("ConnectionsFunction", refs)

    assert env["TERAPI_TABLE_NAME"] == "terapi-local-TerapiTable"
    assert env["TERAPI_SECRET_PREFIX"] == "terapi/terapi-local"
    assert env["TERAPI_SECRET_KEY_ARN"] == refs.get("SecretKey")
    assert env["TERAPI_SECRET_KEY_ARN"].startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:terapi/terapi-local/")
    assert env["TERAPI_PUBLIC_URL"] == "http://localhost:4000"
    assert env["TERAPI_SECRET_RECOVERY_DAYS"] == "7"
    assert env["POWERTOOLS_SERVICE_NAME"] == "connections"
    assert template.functions["AuthorizerFunction"].timeout == 5


def test_short_form_tags_and_events_of_a_tiny_template(tiny: Path):
    template = load_template(tiny)
    refs = Refs()
    refs.record("Jobs", "http://q/jobs", Arn="arn:aws:sqs:us-east-1:123456789012:jobs")

    env = template.function_environment("Worker", refs)

    assert env["QUEUE_URL"] == "http://q/jobs"
    assert env["QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:jobs"
    assert env["JOINED"] == "a-dev-y"
    assert env["PICKED"] == "yes-dev"
    assert env["SUBBED"] == "terapi-local/dev/${Literal}"
    assert env["OWN"] == "1"
    assert template.functions["Worker"].timeout == 7
    assert template.functions["Ticker"].timeout == 2
    [queue_event] = template.queue_events
    assert (queue_event.function, queue_event.batch_size) == ("Worker", 5)
    assert queue_event.report_batch_item_failures is True
    assert queue_event.queue == {"Fn::GetAtt": ["Jobs", "Arn"]}
    schedules = {s.name: s for s in template.schedules}
    assert schedules["Every5"].expression == "rate(5 minutes)"
    assert schedules["Hourly"].expression == "rate(1 hour)"
    assert schedules["Paused"].enabled is False
    [route] = template.routes
    assert (route.route_key, route.authorizer) == ("GET /tick", None)


def test_rate_expressions_and_the_schedule_override(monkeypatch: pytest.MonkeyPatch, tiny: Path):
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("cron(0 12 * * ? *)") is None
    schedule = load_template(tiny).schedules[0]
    assert schedule_interval(schedule) == 300

    monkeypatch.setenv("TERAPI_DEV_SCHEDULE_SECONDS", "0.5")

    assert schedule_interval(schedule) == 0.5


def test_provision_builds_tables_and_the_secret_key_from_the_template(moto_env):
    template = load_template(TEMPLATE_PATH)

    env = provision(template, secret_key="chosen-key")

    table = boto3.client("dynamodb").describe_table(TableName=env["TERAPI_TABLE_NAME"])["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_kind", "by_connection_id", "by_refresh_due"}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=env["TERAPI_TABLE_NAME"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_ttl"
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=env["TERAPI_SECRET_KEY_ARN"])
    assert secret["SecretString"] == "chosen-key"
    assert "POWERTOOLS_SERVICE_NAME" not in env


def test_provision_generates_a_48_character_key_when_none_is_given(moto_env):
    provisioned = provision_resources(load_template(TEMPLATE_PATH), secret_key=None)

    key = provisioned.secret_key
    assert key is not None and len(key) == 48 and key.isalnum()
    stored = boto3.client("secretsmanager").get_secret_value(
        SecretId=provisioned.env["TERAPI_SECRET_KEY_ARN"])["SecretString"]
    assert stored == key


def test_provision_creates_queues_with_their_redrive_policy(moto_env, tiny: Path):
    provisioned = provision_resources(load_template(tiny), secret_key=None)

    url = provisioned.env["QUEUE_URL"]
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "1"
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == provisioned.refs.get("Dead", "Arn")
    assert int(policy["maxReceiveCount"]) == 2


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_sqs_worker_deletes_handled_messages_and_dead_letters_reported_failures(moto_env,
                                                                                tiny: Path):
    template = load_template(tiny)
    provisioned = provision_resources(template, secret_key=None)
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=provisioned.env["QUEUE_URL"], MessageBody="hello")
    sqs.send_message(QueueUrl=provisioned.env["QUEUE_URL"], MessageBody="poison")
    runner = FunctionRunner(template)
    stop = threading.Event()
    schedules, template.schedules = template.schedules, []

    threads = start_workers(template, provisioned.refs, runner, stop)
    dead_url = provisioned.refs.get("Dead")
    try:
        dead_lettered = _wait_for(lambda: sqs.get_queue_attributes(
            QueueUrl=dead_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"] == "1")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    template.schedules = schedules

    seen = runner.handler("Worker").__globals__["SEEN"]
    assert dead_lettered
    assert [s[0] for s in seen].count("hello") == 1
    assert [s[0] for s in seen].count("poison") == 2
    assert {s[2] for s in seen} == {provisioned.refs.get("Jobs", "Arn")}
    assert "2" in {s[1] for s in seen if s[0] == "poison"}
    dead = sqs.receive_message(QueueUrl=dead_url)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


def test_malformed_batch_item_failures_fail_the_whole_batch():
    records = [{"messageId": "1"}, {"messageId": "2"}]

    assert succeeded_messages(records, {"batchItemFailures": [{"itemIdentifier": "2"}]},
                              report_failures=True) == [{"messageId": "1"}]
    assert succeeded_messages(records, {"batchItemFailures": [{"itemIdentifier": "9"}]},
                              report_failures=True) == []
    assert succeeded_messages(records, {"batchItemFailures": [{"itemIdentifier": "2"}]},
                              report_failures=False) == records


def test_schedule_worker_invokes_its_function_on_the_overridden_interval(
        moto_env, tiny: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TERAPI_DEV_SCHEDULE_SECONDS", "0.1")
    template = load_template(tiny)
    provisioned = provision_resources(template, secret_key=None)
    template.queue_events = []
    runner = FunctionRunner(template)
    stop = threading.Event()

    threads = start_workers(template, provisioned.refs, runner, stop)
    seen = runner.handler("Ticker").__globals__["SEEN"]
    try:
        ticked = _wait_for(lambda: len(seen) >= 4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)

    assert ticked
    assert set(seen) == {"Scheduled Event"}
    assert len(threads) == 2


def test_functions_load_once_under_unique_names_with_a_lambda_like_context(tiny: Path):
    first = load_function("functions/worker/", "app.on_tick", root=tiny.parent)
    again = load_function("functions/worker/", "app.on_tick", root=tiny.parent)
    context = LambdaContext("fn", timeout_seconds=2, memory_mb=256)

    assert first is again
    assert first.__module__ == "terapi_fn_worker"
    assert 1000 < context.get_remaining_time_in_millis() <= 2000
    assert context.memory_limit_in_mb == 256
    assert context.invoked_function_arn.endswith(":function:fn")
    assert context.aws_request_id
