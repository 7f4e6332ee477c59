"""Cost model: what 1 million token requests and 1,000 connections held for a month cost on AWS.

Inputs are this run's measurements: the AWS calls each operation made (against moto) and the
in-process handler durations. Prices are us-east-1 list prices before free tiers, each with its
source and the date it was checked. DynamoDB units: a consistent GetItem of an item under 4 KB
is 1 read unit (twice an eventually consistent read); a Query page is half a unit per started
4 KB; a write under 1 KB is 1 write unit, twice that per item inside a transaction.
"""

from __future__ import annotations

import math
from typing import Any

CHECKED = "2026-12-03"
PRICES: dict[str, dict[str, Any]] = {
    "lambda_arm_gb_second": {
        "usd": 0.0000133334, "unit": "GB-second, Arm, first 7.5 billion GB-s/month",
        "source": "https://aws.amazon.com/lambda/pricing/ "
                  "(via cloudchipr.com/blog/aws-lambda-pricing)"},
    "lambda_request": {
        "usd": 0.20 / 1e6, "unit": "request ($0.20 per million)",
        "source": "https://aws.amazon.com/lambda/pricing/"},
    "http_api_request": {
        "usd": 1.00 / 1e6, "unit": "HTTP API call ($1.00 per million, first 300 million)",
        "source": "https://docs.aws.amazon.com/whitepapers/latest/"
                  "best-practices-api-gateway-private-apis-integration/cost-optimization.html"},
    "dynamodb_read_unit": {
        "usd": 0.125 / 1e6, "unit": "on-demand read request unit ($0.125 per million)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Nov 2024 cut; "
                  "via airbyte.com/data-engineering-resources/dynamodb-pricing)"},
    "dynamodb_write_unit": {
        "usd": 0.625 / 1e6, "unit": "on-demand write request unit ($0.625 per million)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Nov 2024 cut; "
                  "via airbyte.com/data-engineering-resources/dynamodb-pricing)"},
    "secret_month": {
        "usd": 0.40, "unit": "secret per month",
        "source": "https://aws.amazon.com/secrets-manager/pricing/"},
    "secrets_api_call": {
        "usd": 0.05 / 1e4, "unit": "API call ($0.05 per 10,000)",
        "source": "https://aws.amazon.com/secrets-manager/pricing/"},
    "sqs_fifo_request": {
        "usd": 0.50 / 1e6, "unit": "FIFO request ($0.50 per million)",
        "source": "https://aws.amazon.com/sqs/pricing/ (via cloudburn.io/blog/amazon-sqs-pricing)"},
    "scheduler_invocation": {
        "usd": 1.00 / 1e6, "unit": "EventBridge Scheduler invocation ($1.00 per million, "
                                   "14 million a month free, not applied)",
        "source": "https://aws.amazon.com/eventbridge/pricing/ "
                  "(via cloudburn.io/blog/amazon-eventbridge-pricing)"},
}
READ_UNITS = {"dynamodb.GetItem": 1.0, "dynamodb.Query": 0.5}
WRITE_UNITS = {"dynamodb.PutItem": 1.0, "dynamodb.UpdateItem": 1.0, "dynamodb.DeleteItem": 1.0,
               "dynamodb.TransactWriteItems": 4.0}
MONTH_SECONDS = 30 * 24 * 3600
SCHEDULE_SECONDS = 300
TOKEN_LIFETIME_SECONDS = 3600


def price(name: str) -> float:
    """The list price of one unit."""
    return PRICES[name]["usd"]


def aws_call_cost(calls: list[str]) -> dict[str, float]:
    """DynamoDB and Secrets Manager cost of one operation's calls, in USD."""
    reads = sum(READ_UNITS.get(c, 0.0) for c in calls)
    writes = sum(WRITE_UNITS.get(c, 0.0) for c in calls)
    secrets = sum(1 for c in calls if c.startswith("secrets-manager."))
    fifo = sum(1 for c in calls if c.startswith("sqs."))
    return {"dynamodb": reads * price("dynamodb_read_unit") + writes * price("dynamodb_write_unit"),
            "secrets_manager": secrets * price("secrets_api_call"),
            "sqs": fifo * price("sqs_fifo_request")}


def lambda_cost(duration_ms: float, memory_mb: int) -> float:
    """One invocation: the request plus its duration billed in whole milliseconds."""
    billed = math.ceil(duration_ms) / 1000 * memory_mb / 1024
    return price("lambda_request") + billed * price("lambda_arm_gb_second")


def run(calls: dict[str, Any], memory: dict[str, int]) -> dict[str, Any]:
    """Both scenarios, itemised, from the call counts and durations measured in this run."""
    ops = {op["operation"]: op for op in calls["operations"]}
    durations = calls["durations"]
    token_calls = ops["get token (fresh, warm container)"]["calls"]
    token_fn = durations["token:AuthFunction"]["median_ms"]
    authorizer = durations["token:AuthorizerFunction"]["median_ms"]
    per_token = {
        "api_gateway": price("http_api_request"),
        "lambda_authorizer": lambda_cost(authorizer, memory["AuthorizerFunction"]),
        "lambda_auth": lambda_cost(token_fn, memory["AuthFunction"]),
        **aws_call_cost(token_calls),
    }
    million = {k: round(v * 1e6, 2) for k, v in per_token.items()}
    million["total"] = round(sum(per_token.values()) * 1e6, 2)

    refresh = ops["get token (refresh)"]
    runs = MONTH_SECONDS // SCHEDULE_SECONDS
    refreshes = 1000 * (MONTH_SECONDS // TOKEN_LIFETIME_SECONDS)
    idle_run = durations.get("refresher:RefresherFunction", {}).get("median_ms", 0.0)
    refresh_calls = aws_call_cost(refresh["calls"])
    month = {
        "secrets_storage": 1000 * price("secret_month"),
        "scheduler": runs * price("scheduler_invocation"),
        "refresher_lambda": runs * lambda_cost(idle_run, memory["RefresherFunction"])
        + refreshes * math.ceil(refresh["elapsed_ms"]) / 1000
        * memory["RefresherFunction"] / 1024 * price("lambda_arm_gb_second"),
        "refresher_index_queries": runs * 4 * READ_UNITS["dynamodb.Query"]
        * price("dynamodb_read_unit"),
        "refresh_dynamodb": refreshes * refresh_calls["dynamodb"],
        "refresh_secrets_manager_calls": refreshes * refresh_calls["secrets_manager"],
    }
    month_rounded = {k: round(v, 2) for k, v in month.items()}
    month_rounded["total"] = round(sum(month.values()), 2)
    return {
        "prices_checked": CHECKED, "prices": PRICES,
        "one_million_token_requests": million,
        "token_request_inputs": {"aws_calls": token_calls, "auth_ms": token_fn,
                                 "authorizer_ms": authorizer},
        "thousand_connections_month": month_rounded,
        "month_inputs": {"scheduled_runs": runs, "refreshes": refreshes,
                         "token_lifetime_s": TOKEN_LIFETIME_SECONDS,
                         "refresh_calls": refresh["calls"], "refresh_ms": refresh["elapsed_ms"],
                         "idle_refresher_run_ms": idle_run},
        "consistent_read_note": "GetItem is ConsistentRead: 1 read unit per item up to 4 KB, "
                                "twice the 0.5 unit of an eventually consistent read",
    }
