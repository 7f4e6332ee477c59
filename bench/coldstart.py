"""Cold start: each function's module imported in a fresh interpreter, against `import boto3`.

Every sample is a new `python` process whose environment is the function's own (its template
variables, resolved against a provisioned moto server) plus what Lambda sets, with the function
folder and the layer on PYTHONPATH. The import is timed inside the child, so interpreter start-up
is excluded from both the function and the boto3 baseline. Samples are interleaved (boto3, then
every function, repeated) so that load on the machine affects both sides of the ratio alike.

"As on Lambda" sets LAMBDA_TASK_ROOT: Powertools then enables the Tracer (the template has
`Tracing: Active`), which imports the X-Ray SDK and patches botocore at import. A second,
shorter series runs with POWERTOOLS_TRACE_DISABLED=1, as `make dev` does, to show that share.
Bytecode is compiled once into a private cache (PYTHONPYCACHEPREFIX) before timing, so no sample
pays for compiling, on either side of the ratio.

The first invocation (import plus one request handled against the moto server on loopback,
boto3 client creation included) is timed the same way, with a real event for each function;
the webhook sender (its event needs a queued webhook and a receiver) and the proxy (it needs
a provider API on loopback while the child runs) are left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import LAYER_PATH, median, ms, progress

TARGET_RATIO = 1.5
TRACE_HEADER = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"
CHILD = r"""
import importlib, json, sys, time, uuid
started, cpu = time.perf_counter(), time.process_time()
module = importlib.import_module(sys.argv[1])
result = {"import_s": time.perf_counter() - started, "import_cpu_s": time.process_time() - cpu}
if len(sys.argv) > 3:
    class Context:
        function_name, function_version = sys.argv[4], "$LATEST"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + sys.argv[4]
        aws_request_id = str(uuid.uuid4())
        log_group_name = "/aws/lambda/" + sys.argv[4]
        log_stream_name = "bench"
        def get_remaining_time_in_millis(self):
            return 29000
    with open(sys.argv[3]) as handle:
        event = json.load(handle)
    handler = getattr(module, sys.argv[2])
    begun = time.perf_counter()
    reply = handler(event, Context())
    result["handle_s"] = time.perf_counter() - begun
    result["first_call_s"] = time.perf_counter() - started
    result["status"] = reply.get("statusCode") if isinstance(reply, dict) else None
print(json.dumps(result))
"""


def lambda_env(logical_id: str, spec: Any, function_env: dict[str, str], aws_env: dict[str, str],
               cache_dir: str, *, tracing: bool) -> dict[str, str]:
    """The environment of one function's container, as Lambda would set it (minus credentials)."""
    task_root = str(Path(spec.code_uri).resolve()) if Path(spec.code_uri).is_absolute() else None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
        "PYTHONPYCACHEPREFIX": cache_dir, "PYTHONNOUSERSITE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": f"terapi-{logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "_X_AMZN_TRACE_ID": TRACE_HEADER, "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **aws_env, **function_env,
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env["LAMBDA_TASK_ROOT"] = task_root or ""
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "1"
    return env


def _sample(module: str, pythonpath: list[str], env: dict[str, str], cwd: str,
            invoke: tuple[str, str, str] | None = None) -> dict[str, Any]:
    command = [sys.executable, "-c", CHILD, module]
    if invoke is not None:
        command += list(invoke)
    run_env = {**env, "PYTHONPATH": os.pathsep.join(pythonpath)}
    done = subprocess.run(command, env=run_env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"cold start of {module} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


class Targets:
    """The functions of the template, each with its folder, handler and environment."""

    def __init__(self, template: Any, refs: Any, aws_env: dict[str, str], cache_dir: str):
        self.items: list[dict[str, Any]] = []
        for logical_id, spec in template.functions.items():
            folder = (Path(template.root) / spec.code_uri).resolve()
            module, _, attribute = spec.handler.rpartition(".")
            function_env = template.function_environment(logical_id, refs)
            envs = {tracing: lambda_env(logical_id, spec, function_env, aws_env, cache_dir,
                                        tracing=tracing) for tracing in (True, False)}
            for env in envs.values():
                env["LAMBDA_TASK_ROOT"] = str(folder)
            self.items.append({"function": logical_id, "folder": str(folder),
                               "module": module, "attribute": attribute, "envs": envs,
                               "pythonpath": [str(folder), str(LAYER_PATH)]})
        self.baseline_env = lambda_env("baseline", template.functions[self.items[0]["function"]],
                                       {}, aws_env, cache_dir, tracing=False)


def run(runs: int = 7, untraced_runs: int = 3, first_call_runs: int = 3) -> dict[str, Any]:
    """Median import time per function and its ratio to `import boto3`; first invocations too."""
    from bench.common import moto_server

    with moto_server() as aws, tempfile.TemporaryDirectory(prefix="terapi-bench-pyc-") as cache:
        aws_env = {k: v for k, v in aws["env"].items() if k.startswith(("AWS_", "NO_PROXY",
                                                                          "no_proxy"))}
        targets = Targets(aws["template"], aws["refs"], aws_env, cache)
        events = _record_events(aws, targets)
        tmp = Path(cache)
        progress("cold start: compiling bytecode once (not timed)")
        _sample("boto3", [], targets.baseline_env, cache)
        for item in targets.items:
            _sample(item["module"], item["pythonpath"], item["envs"][True], item["folder"])
        series = _interleaved(targets, runs, untraced_runs, cache)
        first_calls = _first_calls(targets, events, first_call_runs, tmp)
    return _summarise(targets, series, first_calls, runs)


def _interleaved(targets: Targets, runs: int, untraced_runs: int,
                 cache: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    series: dict[str, dict[str, list[dict[str, Any]]]] = {"traced": {}, "untraced": {}}
    for run_index in range(max(runs, untraced_runs)):
        progress(f"cold start: round {run_index + 1}/{max(runs, untraced_runs)}")
        for mode, count in (("traced", runs), ("untraced", untraced_runs)):
            if run_index >= count:
                continue
            series[mode].setdefault("boto3", []).append(
                _sample("boto3", [], targets.baseline_env, cache))
            for item in targets.items:
                env = item["envs"][mode == "traced"]
                series[mode].setdefault(item["function"], []).append(
                    _sample(item["module"], item["pythonpath"], env, item["folder"]))
    return series


def _first_calls(targets: Targets, events: dict[str, Any], runs: int,
                 tmp: Path) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for item in targets.items:
        event = events.get(item["function"])
        if event is None:
            continue
        path = tmp / f"event-{item['function']}.json"
        path.write_text(json.dumps(event))
        progress(f"cold start: first invocation of {item['function']}")
        invoke = (item["attribute"], str(path), f"terapi-{item['function']}")
        results[item["function"]] = [
            _sample(item["module"], item["pythonpath"], item["envs"][True], item["folder"],
                    invoke) for _ in range(runs)]
    return results


def _record_events(aws: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """Seed the moto server through the gateway and keep one real event per function."""
    from bench.local import LocalClient
    from devserver.functions import forget_loaded_functions
    from devserver.gateway import LocalApi
    from devserver.workers import scheduled_event

    template = aws["template"]
    forget_loaded_functions()
    api = LocalApi(template, domain="localhost:3003")
    events: dict[str, Any] = {}
    original = api.runner.invoke

    def recording(logical_id: str, event: Any) -> Any:
        events[logical_id] = json.loads(json.dumps(event))
        return original(logical_id, event)

    api.runner.invoke = recording  # type: ignore[method-assign]
    client = LocalClient(api)
    key = aws["secret_key"]
    requests: list[tuple[str, str, Any, dict[str, str]]] = [
        ("POST", "/integration", {"provider_config_key": "bench", "provider": "oauth2",
                                  "oauth_client_id": "c", "oauth_client_secret": "s",
                                  "authorization_url": "http://127.0.0.1:9/authorize",
                                  "token_url": "http://127.0.0.1:9/token"}, {}),
        ("POST", "/connection", {"connection_id": "user-1", "provider_config_key": "bench",
                                 "credentials": {"access_token": "at-1",
                                                 "expires_at": "2999-01-01T00:00:00Z"}}, {}),
        ("GET", "/integration/bench", None, {}),
        ("GET", "/connection/user-1?provider_config_key=bench", None, {}),
        ("GET", "/auth/token/bench/user-1", None, {}),
        ("POST", "/connect/sessions", {"allowed_integrations": ["bench"]}, {}),
        ("GET", "/webhooks/settings", None, {}),
    ]
    for method, path, body, headers in requests:
        reply = client.request(method, path, json_body=body, headers=headers, key=key)
        if reply.status >= 400 and method == "POST" and path != "/connect/sessions":
            raise RuntimeError(f"seeding {path} failed: {reply.status} {reply.body}")
    names = {item["function"] for item in targets.items}
    for schedule in template.schedules:
        if schedule.function in names:
            events[schedule.function] = scheduled_event(schedule)
    return events


def _summarise(targets: Targets, series: dict[str, Any], first_calls: dict[str, Any],
               runs: int) -> dict[str, Any]:
    def med(samples: list[dict[str, Any]], key: str) -> float:
        return median([s[key] for s in samples])

    base = {mode: (med(values["boto3"], "import_s"), med(values["boto3"], "import_cpu_s"))
            for mode, values in series.items() if values}
    rows = []
    for item in targets.items:
        name = item["function"]
        traced = series["traced"][name]
        wall, cpu = med(traced, "import_s"), med(traced, "import_cpu_s")
        row: dict[str, Any] = {
            "function": name, "import_ms": ms(wall), "import_cpu_ms": ms(cpu),
            "ratio_to_boto3": round(wall / base["traced"][0], 2),
            "cpu_ratio_to_boto3": round(cpu / base["traced"][1], 2),
        }
        row["target_met"] = row["ratio_to_boto3"] <= TARGET_RATIO
        untraced = series["untraced"].get(name)
        if untraced:
            row["import_ms_tracing_off"] = ms(med(untraced, "import_s"))
            row["ratio_tracing_off"] = round(med(untraced, "import_s") / base["untraced"][0], 2)
        if name in first_calls:
            row["first_invocation_ms"] = ms(med(first_calls[name], "first_call_s"))
            row["first_handle_ms"] = ms(med(first_calls[name], "handle_s"))
            row["first_status"] = first_calls[name][0].get("status")
        rows.append(row)
    return {"boto3_import_ms": ms(base["traced"][0]), "boto3_import_cpu_ms": ms(base["traced"][1]),
            "runs": runs, "target_ratio": TARGET_RATIO, "functions": rows}
