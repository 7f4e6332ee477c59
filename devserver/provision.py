"""Create the template's tables, secrets and queues in whatever AWS endpoint boto3 points at.

The dev server provisions its embedded moto server with this, and the test suite provisions
moto's in-process mock with the very same code, so tests and `make dev` run on identical
resources built from the template's own key schemas, indexes and queue settings.
Importing this module has no side effects.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

import boto3

from devserver.template import STACK_NAME, Refs, Template

SECRET_KEY_VARIABLE = "TERAPI_SECRET_KEY_ARN"  # noqa: S105 - a variable name
GENERATED_KEY_LENGTH = 48
_QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                     "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "FifoQueue",
                     "ContentBasedDeduplication", "KmsMasterKeyId", "SqsManagedSseEnabled")
_UNSHARED_VARIABLES = ("POWERTOOLS_SERVICE_NAME",)


@dataclass
class Provisioned:
    """What provisioning produced: resource values, the functions' environment, the API key."""

    refs: Refs
    env: dict[str, str]
    secret_key: str | None


def provision(template: Template, *, secret_key: str | None) -> dict[str, str]:
    """Create every table, secret and queue; return the environment every function needs."""
    return provision_resources(template, secret_key=secret_key).env


def provision_resources(template: Template, *, secret_key: str | None) -> Provisioned:
    """Like `provision`, but also return the resources' physical values and the API secret key."""
    refs = Refs()
    for logical_id, properties in template.tables.items():
        _create_table(template, refs, logical_id, properties)
    api_key = _create_secrets(template, refs, secret_key)
    _create_queues(template, refs)
    env: dict[str, str] = {}
    for logical_id in template.functions:
        env.update(template.function_environment(logical_id, refs))
    for name in _UNSHARED_VARIABLES:
        env.pop(name, None)
    return Provisioned(refs=refs, env=env, secret_key=api_key)


def generate_key(length: int = GENERATED_KEY_LENGTH) -> str:
    """A random alphanumeric key, as `GenerateSecretString` with `ExcludePunctuation` makes."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _create_table(template: Template, refs: Refs, logical_id: str,
                  properties: dict[str, Any]) -> None:
    client = boto3.client("dynamodb")
    spec = template.resolve(properties, refs)
    name = template.table_name(logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "BillingMode": spec.get("BillingMode", "PROVISIONED"),
    }
    throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = spec.get("ProvisionedThroughput", throughput)
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if spec.get(key):
            request[key] = [_index(i, request["BillingMode"], throughput) for i in spec[key]]
    if spec.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **spec["StreamSpecification"]}
    try:
        reply = client.create_table(**request)["TableDescription"]
    except client.exceptions.ResourceInUseException:
        reply = client.describe_table(TableName=name)["Table"]
    ttl = spec.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    refs.record(logical_id, name, Arn=reply["TableArn"],
                StreamArn=reply.get("LatestStreamArn"))


def _index(index: dict[str, Any], billing_mode: str,
           throughput: dict[str, int]) -> dict[str, Any]:
    index = dict(index)
    if billing_mode == "PROVISIONED" and "KeySchema" in index:
        index.setdefault("ProvisionedThroughput", throughput)
    return index


def _api_key_secret(template: Template) -> str | None:
    """The secret the functions read the API key from (`TERAPI_SECRET_KEY_ARN: !Ref X`)."""
    for function in template.functions.values():
        value = function.environment.get(SECRET_KEY_VARIABLE)
        if isinstance(value, dict) and "Ref" in value:
            return value["Ref"]
    generated = [k for k, p in template.secrets.items() if "GenerateSecretString" in p]
    return generated[0] if generated else None


def _create_secrets(template: Template, refs: Refs, secret_key: str | None) -> str | None:
    client = boto3.client("secretsmanager")
    api_secret = _api_key_secret(template)
    api_key = None
    for logical_id, properties in template.secrets.items():
        spec = template.resolve(properties, refs)
        name = spec.get("Name") or f"{STACK_NAME}-{logical_id}"
        if "SecretString" in spec:
            value = spec["SecretString"]
        else:
            generator = spec.get("GenerateSecretString") or {}
            length = int(generator.get("PasswordLength", GENERATED_KEY_LENGTH))
            generated = secret_key if (logical_id == api_secret and secret_key) else \
                generate_key(length)
            value = generated
            if generator.get("SecretStringTemplate") and generator.get("GenerateStringKey"):
                document = json.loads(generator["SecretStringTemplate"])
                document[generator["GenerateStringKey"]] = generated
                value = json.dumps(document)
            if logical_id == api_secret:
                api_key = generated
        try:
            arn = client.create_secret(Name=name, SecretString=value,
                                       Description=spec.get("Description", ""))["ARN"]
        except client.exceptions.ResourceExistsException:
            arn = client.put_secret_value(SecretId=name, SecretString=value)["ARN"]
        refs.record(logical_id, arn, Id=arn)
    return api_key


def _create_queues(template: Template, refs: Refs) -> None:
    client = boto3.client("sqs")
    for logical_id, properties in template.queues.items():
        name = template.queue_name(logical_id)
        attributes = {k: _text(v) for k, v in template.resolve(properties, refs).items()
                      if k in _QUEUE_ATTRIBUTES}
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        refs.record(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
    for logical_id, properties in template.queues.items():
        policy = properties.get("RedrivePolicy")
        if policy:
            resolved = template.resolve(policy, refs)
            client.set_queue_attributes(QueueUrl=refs.get(logical_id), Attributes={
                "RedrivePolicy": json.dumps(resolved) if isinstance(resolved, dict)
                else str(resolved)})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
