"""Turns the results into Markdown tables, each figure with its method in one line beside it."""

from __future__ import annotations

from typing import Any


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("pass" if met else "**miss**")


def cold_start(result: dict[str, Any]) -> list[str]:
    """Cold start table."""
    lines = [
        "### Cold start",
        "",
        f"Method: median of {result['runs']} fresh interpreters per function, module import "
        "timed inside the child, Lambda's environment (LAMBDA_TASK_ROOT set, so the X-Ray "
        "tracer is on, as `Tracing: Active` deploys it), interleaved with `import boto3` "
        f"(median {result['boto3_import_ms']} ms); target <= {result['target_ratio']}x boto3. "
        "First invocation = import + one real request against moto on loopback, median of 3.",
        "",
        "| Function | Import (ms) | x boto3 | Target | Import, tracing off (ms, x boto3) "
        "| First invocation (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["functions"]:
        off = (f"{row['import_ms_tracing_off']} ({row['ratio_tracing_off']}x)"
               if "import_ms_tracing_off" in row else "-")
        first = row.get("first_invocation_ms", "not measured")
        lines.append(f"| {row['function']} | {row['import_ms']} | {row['ratio_to_boto3']}x "
                     f"| {_verdict(row['target_met'])} | {off} | {first} |")
    return lines


def aws_calls(result: dict[str, Any]) -> list[str]:
    """AWS calls per operation table."""
    lines = [
        "### AWS calls per operation",
        "",
        "Method: one request through the local gateway (authorizer + handler) in a warm "
        "container, against in-process moto; calls counted with botocore `before-call` hooks on "
        "every client. Targets: warm token read and get connection = 1 call; a list page = 1 "
        "`Query`.",
        "",
        "| Operation | AWS calls | Calls, in order | Provider calls | Target |",
        "|---|---|---|---|---|",
    ]
    for op in result["operations"]:
        names = ", ".join(c.split(".", 1)[1] for c in op["calls"]) or "none"
        lines.append(f"| {op['operation']} | {op['aws_calls']} | {names} "
                     f"| {op['provider_calls']} | {_verdict(op['target_met'])} |")
    for name in result.get("unavailable", []):
        lines.append(f"| {name} | - | function not in this tree yet | - | n/a |")
    return lines


def burst(result: dict[str, Any]) -> list[str]:
    """Refresh coalescing table."""
    return [
        "### Refresh coalescing under a burst",
        "",
        f"Method: {result['processes']} spawned processes x {result['threads']} threads ask "
        "for one expired token at the same instant; shared moto server and a counting OAuth "
        f"token endpoint (answers in {result['provider_delay_ms']} ms) on 127.0.0.1; latency "
        "per caller from the start line. Target: 1 provider call.",
        "",
        "| Callers | Provider refresh calls | Target | Distinct tokens | Errors | p50 (ms) "
        "| p99 (ms) | AWS calls (all callers) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result['callers']} | {result['provider_refresh_calls']} "
        f"| {_verdict(result['target_met'])} | {result['distinct_tokens']} "
        f"| {', '.join(result['errors']) or 'none'} | {result['p50_ms']} | {result['p99_ms']} "
        f"| {result['aws_calls']} |",
    ]


def scale(result: dict[str, Any]) -> list[str]:
    """List-at-scale table."""
    lines = [
        "### Scale: listing connections",
        "",
        f"Method: connections seeded with BatchWriteItem in `ConnectionRecord.to_item()` shape "
        f"into in-process moto; `GET /connection?limit={result['page_size']}` through the "
        "gateway, median of 3; items read = the Query reply's ScannedCount; read units "
        "estimated from item sizes (eventually consistent). Page time is moto's, which sorts the "
        "whole partition per Query; DynamoDB reads only the page.",
        "",
        "| Connections | First page (ms) | Items read | Deep page via cursor (ms) | Items read "
        "| All integrations, first page (ms) | Items read | Read units / page |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        first, deep, every = row["first_page"], row["deep_page"], row["all_integrations_first_page"]
        lines.append(f"| {row['connections']:,} | {first['page_ms']} | {first['items_read']} "
                     f"| {deep['page_ms']} | {deep['items_read']} | {every['page_ms']} "
                     f"| {every['items_read']} | {first['read_units']} |")
    return lines


def throughput(result: dict[str, Any]) -> list[str]:
    """Local API throughput table."""
    return [
        "### Local API throughput",
        "",
        "Method: `python -m devserver` as its own process; a second process sends "
        f"`GET /connection/{{id}}` from {result['concurrency']} keep-alive `http.client` threads, "
        "bounded by count and time.",
        "",
        "| Requests | Seconds | Requests/s | p50 (ms) | p99 (ms) | Non-200 |",
        "|---|---|---|---|---|---|",
        f"| {result['requests']} | {result['seconds']} | {result['requests_per_second']} "
        f"| {result['p50_ms']} | {result['p99_ms']} | {result['non_200']} |",
    ]


def cost(result: dict[str, Any]) -> list[str]:
    """Cost model tables and the prices used."""
    token, month = result["one_million_token_requests"], result["thousand_connections_month"]
    inputs, month_in = result["token_request_inputs"], result["month_inputs"]
    lines = [
        "### Cost model (us-east-1 list prices, free tiers not applied)",
        "",
        f"1 million warm token requests: each = 1 HTTP API call + authorizer "
        f"({inputs['authorizer_ms']} ms) + auth function ({inputs['auth_ms']} ms, median "
        f"in-process handler time with moto) + {', '.join(inputs['aws_calls'])} "
        "(consistent read: 1 read unit, twice an eventually consistent one).",
        "",
        "| Item | USD |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in token.items()],
        "",
        f"1,000 connections for 30 days: a secret each; the refresher every 5 min "
        f"({month_in['scheduled_runs']} runs, {month_in['idle_refresher_run_ms']} ms idle); "
        f"tokens living {month_in['token_lifetime_s']} s, so {month_in['refreshes']:,} refreshes, "
        f"each {len(month_in['refresh_calls'])} AWS calls as measured "
        f"({month_in['refresh_ms']} ms, loopback provider).",
        "",
        "| Item | USD |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in month.items()],
        "",
        f"Prices (checked {result['prices_checked']}):",
        "",
    ]
    for name, entry in result["prices"].items():
        lines.append(f"- {name}: ${entry['usd']:.10g} per {entry['unit']}; {entry['source']}")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """All sections that ran, as one Markdown document."""
    machine = results["machine"]
    lines = [f"Run {machine['date']} on {machine['nproc']} CPUs, {machine['python']}, "
             f"load average at start {machine['load_average']}; code at "
             f"{machine.get('commit', '?')}"
             + (f" with uncommitted changes to {', '.join(machine['uncommitted'])}"
                if machine.get("uncommitted") else "") + ".", ""]
    renderers = {"cold_start": cold_start, "aws_calls": aws_calls, "burst": burst,
                 "scale": scale, "throughput": throughput, "cost": cost}
    for name, render in renderers.items():
        if name in results["sections"]:
            lines += [*render(results["sections"][name]), ""]
        elif name in results["errors"]:
            lines += [f"### {name}", "", f"Broke: {results['errors'][name]}", ""]
    return "\n".join(lines)
