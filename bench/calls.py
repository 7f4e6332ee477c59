"""AWS calls per operation, and in-process handler durations, against moto in this process.

Each operation goes through the local gateway exactly as `make dev` serves it (router,
authorizer, handler), after a warm-up that makes the container warm; the calls made by that one
request are counted with botocore event hooks. Providers are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.common import median, ms, percentile, progress
from bench.local import CallCounter, LocalClient, local_aws

KEY = "bench"
FAR_FUTURE = "2999-01-01T00:00:00Z"
EXPIRED = "2020-01-01T00:00:00Z"
WARM_TARGETS = {"get token (fresh, warm container)": 1, "get connection": 1}


def _function_landed(template: Any, logical_id: str) -> bool:
    spec = template.functions.get(logical_id)
    return spec is not None and (Path(template.root) / spec.code_uri / "app.py").exists()


class Operations:
    """The operations to count, sharing one integration on a loopback OAuth server."""

    def __init__(self, client: LocalClient, counter: CallCounter, provider: Any):
        self.client, self.counter, self.provider = client, counter, provider
        self.results: list[dict[str, Any]] = []

    def connection_body(self, connection_id: str, expires_at: str) -> dict[str, Any]:
        """A connection import with tokens the loopback provider really issued."""
        issued = self.provider.issue_tokens()
        return {"connection_id": connection_id, "provider_config_key": KEY,
                "credentials": {"access_token": issued["access_token"],
                                "refresh_token": issued["refresh_token"],
                                "expires_at": expires_at}}

    def measure(self, name: str, method: str, path: str, *, expect: int = 200,
                **kwargs: Any) -> Any:
        """Send one request, counting its AWS calls; a wrong status breaks the benchmark."""
        provider_before = self.provider.token_calls
        with self.counter.counting() as calls:
            began = time.perf_counter()
            reply = self.client.request(method, path, **kwargs)
            elapsed = time.perf_counter() - began
        if reply.status != expect:
            raise RuntimeError(f"{name}: {method} {path} answered {reply.status} {reply.body}")
        self.record(name, list(calls), self.provider.token_calls - provider_before, elapsed)
        return reply

    def record(self, name: str, calls: list[str], provider_calls: int = 0,
               elapsed: float = 0.0) -> None:
        """Keep one operation's call list and its target verdict."""
        target = WARM_TARGETS.get(name)
        if name.startswith("list connections"):
            met: bool | None = calls.count("dynamodb.Query") == 1 and len(calls) == 1
        else:
            met = None if target is None else len(calls) == target
        self.results.append({"operation": name, "aws_calls": len(calls), "calls": calls,
                             "provider_calls": provider_calls, "target_met": met,
                             "elapsed_ms": ms(elapsed)})
        progress(f"calls: {name}: {len(calls)} {calls}")


def run(durations_samples: int = 200) -> dict[str, Any]:
    """Count AWS calls per operation and time warm handlers; returns the section's results."""
    from tests.support.oauth_server import OAuthServer

    counter = CallCounter()
    counter.install()
    with OAuthServer() as provider, local_aws() as (client, template):
        ops = Operations(client, counter, provider)
        reply = client.request("POST", "/integration", json_body={
            "provider_config_key": KEY, "provider": "oauth2",
            "oauth_client_id": provider.client_id, "oauth_client_secret": provider.client_secret,
            "authorization_url": provider.url("/authorize"), "token_url": provider.url("/token")})
        if reply.status != 200:
            raise RuntimeError(f"creating the integration failed: {reply.status} {reply.body}")
        _connection_operations(ops)
        _token_operations(ops)
        unavailable = []
        if _function_landed(template, "OAuthFunction"):
            _oauth_callback(ops)
        else:
            unavailable.append("OAuth callback")
        if _function_landed(template, "ProxyFunction"):
            _proxy_call(ops)
        else:
            unavailable.append("proxy call")
        durations = _handler_durations(client, template, durations_samples)
    return {"operations": ops.results, "unavailable": unavailable, "durations": durations}


def _connection_operations(ops: Operations) -> None:
    for index in range(3):
        ops.client.request("POST", "/connection",
                           json_body=ops.connection_body(f"seed-{index}", FAR_FUTURE))
    ops.measure("create connection", "POST", "/connection",
                json_body=ops.connection_body("user-1", FAR_FUTURE))
    ops.measure("replace credentials", "POST", "/connection",
                json_body=ops.connection_body("user-1", FAR_FUTURE))
    path = f"/connection/user-1?provider_config_key={KEY}"
    ops.client.request("GET", path)
    ops.measure("get connection", "GET", path)
    ops.measure("list connections (one page)", "GET",
                f"/connection?provider_config_key={KEY}&limit=100")
    ops.measure("list connections, all integrations (one page)", "GET", "/connection?limit=100")
    ops.measure("delete connection", "DELETE", f"/connection/seed-0?provider_config_key={KEY}",
                expect=204)


def _token_operations(ops: Operations) -> None:
    ops.client.request("POST", "/connection",
                       json_body=ops.connection_body("fresh", FAR_FUTURE))
    ops.client.request("GET", f"/auth/token/{KEY}/fresh")
    ops.measure("get token (fresh, warm container)", "GET", f"/auth/token/{KEY}/fresh")
    ops.client.request("POST", "/connection",
                       json_body=ops.connection_body("expired", EXPIRED))
    ops.measure("get token (refresh)", "GET", f"/auth/token/{KEY}/expired")
    ops.measure("get token (force_refresh=true)", "GET",
                f"/auth/token/{KEY}/fresh?force_refresh=true")


def _oauth_callback(ops: Operations) -> None:
    """Connect session, /oauth/connect, the loopback /authorize, then the callback."""
    session = ops.measure("create connect session", "POST", "/connect/sessions",
                          json_body={"allowed_integrations": [KEY],
                                     "connection_id": "oauth-user"})
    query = urlencode({"connect_session_token": session.body["token"]})
    redirect = ops.measure("OAuth connect (redirect to provider)", "GET",
                           f"/oauth/connect/{KEY}?{query}", expect=302, key=None)
    parts = urlsplit(redirect.headers["location"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("GET", f"{parts.path}?{parts.query}")
    answer = connection.getresponse()
    location = answer.getheader("Location") or ""
    connection.close()
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    ops.measure("OAuth callback (code exchange, connection stored)", "GET",
                f"/oauth/callback?{urlencode(params)}", key=None,
                headers={"Accept": "application/json"})


def _proxy_call(ops: Operations) -> None:
    from tests.support.echo_server import EchoServer

    with EchoServer() as echo:
        key = "bench-proxy"
        reply = ops.client.request("POST", "/integration", json_body={
            "provider_config_key": key, "provider": "oauth2", "oauth_client_id": "c",
            "oauth_client_secret": "s", "authorization_url": f"{echo.url}/authorize",
            "token_url": f"{echo.url}/oauth/token", "api_base_url": f"{echo.url}/api"})
        if reply.status != 200:
            raise RuntimeError(f"proxy integration failed: {reply.status} {reply.body}")
        ops.client.request("POST", "/connection", json_body={
            "connection_id": "proxied", "provider_config_key": key,
            "credentials": {"access_token": "token-1", "expires_at": FAR_FUTURE}})
        headers = {"Connection-Id": "proxied", "Provider-Config-Key": key}
        ops.client.request("GET", "/proxy/items?page=1", headers=headers)
        ops.measure("proxy call (GET, warm)", "GET", "/proxy/items?page=1", headers=headers)


def _handler_durations(client: LocalClient, template: Any, samples: int) -> dict[str, Any]:
    """Median and p99 in-process duration of the warm token and get-connection handlers."""
    from devserver.workers import scheduled_event

    runner = client.local_api.runner
    timings: dict[str, list[float]] = {}
    original = runner.invoke

    def timed(logical_id: str, event: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(logical_id, event)
        finally:
            timings.setdefault(logical_id, []).append(time.perf_counter() - started)

    collected: dict[str, list[float]] = {}
    runner.invoke = timed  # type: ignore[method-assign]
    try:
        for path, label in ((f"/auth/token/{KEY}/fresh", "token"),
                            (f"/connection/user-1?provider_config_key={KEY}", "connection")):
            timings.clear()
            for _ in range(samples):
                client.request("GET", path)
            progress(f"durations: {label} x{samples}")
            for logical_id, values in timings.items():
                collected[f"{label}:{logical_id}"] = values[:]
        timings.clear()
        schedule = next((e for e in template.schedules if e.function == "RefresherFunction"),
                        None)
        if schedule is not None:
            for _ in range(5):
                runner.invoke("RefresherFunction", scheduled_event(schedule))
            collected["refresher:RefresherFunction"] = timings.get("RefresherFunction", [])
    finally:
        runner.invoke = original  # type: ignore[method-assign]
    return {name: {"median_ms": ms(median(v)), "p99_ms": ms(percentile(v, 0.99)),
                   "samples": len(v)} for name, v in collected.items() if v}
