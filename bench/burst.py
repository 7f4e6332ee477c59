"""Refresh coalescing under a burst: N processes x M threads ask for one expired token at once.

Each process stands in for a Lambda container (spawned, so each has its own imports, boto3
clients and secret cache); they share only a moto server and a counting OAuth token endpoint,
both on 127.0.0.1. Clients are created before the start line, so latency is the token path's
own (lease, wait for the holder, read the new version), not boto3 start-up.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.common import median, ms, percentile, progress

KEY = "bench-burst"


def ask_for_token(env: dict[str, str], connection_id: str, threads: int,
                  start_at: float) -> dict[str, Any]:
    """Run in a child process: `threads` callers ask for the token at `start_at`.

    Returns (seconds taken, access token or `error:<code>`) for each caller, and the AWS calls
    the process made, by name.
    """
    os.environ.update(env)
    from bench.local import CallCounter
    from terapi.aws import client
    from terapi.errors import TerapiError
    from terapi.services.tokens import get_token

    counter = CallCounter()
    counter.install()
    client("dynamodb"), client("secretsmanager")
    counter.active = True
    results: list[tuple[float, str]] = [(0.0, "")] * threads
    barrier = threading.Barrier(threads)

    def ask(index: int) -> None:
        barrier.wait()
        time.sleep(max(0.0, start_at - time.time()))
        began = time.perf_counter()
        try:
            value = get_token(KEY, connection_id)["access_token"]
        except TerapiError as exc:
            value = f"error:{exc.code}"
        results[index] = (time.perf_counter() - began, value)

    workers = [threading.Thread(target=ask, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"answers": results, "calls": list(counter.calls)}


def run(processes: int = 4, threads: int = 25, provider_delay: float = 0.25) -> dict[str, Any]:
    """One burst against one expired connection; returns refresh calls and latency."""
    from bench.common import ensure_layer_on_path, moto_server
    from tests.support.oauth_server import OAuthServer
    from tests.support.token_workers import connect_expired

    ensure_layer_on_path()
    with moto_server() as aws, OAuthServer() as provider:
        env = {**aws["env"], "TERAPI_REFRESH_LEASE_SECONDS": "30",
               "TERAPI_REFRESH_WAIT_SECONDS": "30"}
        os.environ.update(env)
        connect_expired(provider, KEY)
        provider.token_delay = provider_delay
        before = provider.token_calls
        progress(f"burst: {processes} processes x {threads} threads, provider answers in "
                 f"{provider_delay}s")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            # Warm the pool first, so the start line is not spent importing interpreters.
            list(pool.map(_ready, range(processes)))
            start_at = time.time() + 3.0
            futures = [pool.submit(ask_for_token, env, "user-1", threads, start_at)
                       for _ in range(processes)]
            replies = [future.result(timeout=300) for future in futures]
        refresh_calls = provider.token_calls - before
    answers = [answer for reply in replies for answer in reply["answers"]]
    calls = [name for reply in replies for name in reply["calls"]]
    latencies = [seconds for seconds, _ in answers]
    tokens = {value for _, value in answers}
    errors = sorted(value for value in tokens if value.startswith("error:"))
    return {"processes": processes, "threads": threads, "callers": len(answers),
            "provider_delay_ms": ms(provider_delay), "provider_refresh_calls": refresh_calls,
            "target_met": refresh_calls == 1, "distinct_tokens": len(tokens - set(errors)),
            "errors": errors, "p50_ms": ms(median(latencies)),
            "p99_ms": ms(percentile(latencies, 0.99)), "max_ms": ms(max(latencies)),
            "aws_calls": len(calls),
            "aws_calls_by_name": {name: calls.count(name) for name in sorted(set(calls))}}


def _ready(_: int) -> bool:
    """Import Terapi in a pool process before the burst (not timed)."""
    import terapi.services.tokens  # noqa: F401

    return True
