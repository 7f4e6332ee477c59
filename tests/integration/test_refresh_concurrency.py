"""Exactly one refresh across processes, and a lease that outlives no dead holder.

Separate processes stand in for Lambda containers: they share only AWS (a moto server on
loopback) and the provider (a counting token endpoint on loopback).
"""

from __future__ import annotations

import multiprocessing
import socket
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest
from moto.server import ThreadedMotoServer

from devserver import TEMPLATE_PATH, moto_fixes
from devserver.provision import provision_resources
from devserver.template import load_template
from tests.support.oauth_server import OAuthServer
from tests.support.token_workers import ask_for_tokens, connect_expired, hold_refresh

KEY = "inhouse"
PROCESSES, THREADS = 4, 25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset_cached_configuration() -> None:
    from terapi.aws import reset_clients
    from terapi.settings import get_settings

    reset_clients()
    get_settings.cache_clear()


@pytest.fixture
def shared_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A moto server every process can reach, provisioned from template.yaml.

    The waiters' bound is generous: 99 callers polling one moto server on a loaded 2-core CI
    machine can queue for many seconds, and this file proves one refresh, not the wait bound
    (test_tokens.py proves that).
    """
    moto_fixes.apply()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto's backends are global to the process, so state from an earlier test must go.
    reset = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_NAMESPACE": "Terapi",
           "POWERTOOLS_LOG_LEVEL": "WARNING", "TERAPI_REFRESH_LEASE_SECONDS": "20",
           "TERAPI_REFRESH_WAIT_SECONDS": "90"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _reset_cached_configuration()
    template = load_template(TEMPLATE_PATH, parameter_overrides={"PublicUrl": "http://x"})
    env.update(provision_resources(template, secret_key="unused").env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _reset_cached_configuration()
    yield env
    server.stop()
    _reset_cached_configuration()


def test_one_hundred_callers_in_four_processes_make_one_refresh(
        shared_aws: dict[str, str], provider: OAuthServer) -> None:
    issued = connect_expired(provider, KEY)
    provider.token_delay = 0.5
    start_at = time.time() + 4.0

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        futures = [pool.submit(ask_for_tokens, shared_aws, KEY, "user-1", THREADS, start_at)
                   for _ in range(PROCESSES)]
        tokens = [token for future in futures for token in future.result(timeout=120)]

    assert provider.token_calls == 1
    assert len(tokens) == PROCESSES * THREADS
    assert len(set(tokens)) == 1
    assert tokens[0].startswith("at_") and tokens[0] != issued["access_token"]


def test_a_holder_killed_mid_refresh_loses_the_lease_to_the_next_caller(
        shared_aws: dict[str, str], provider: OAuthServer) -> None:
    from terapi.services.tokens import get_token
    from terapi.store.connections import ConnectionStore

    connect_expired(provider, KEY)
    provider.rotate_refresh_tokens = False
    provider.token_delay = 30.0
    short_lease = {**shared_aws, "TERAPI_REFRESH_LEASE_SECONDS": "2"}
    holder = multiprocessing.get_context("spawn").Process(
        target=hold_refresh, args=(short_lease, KEY, "user-1"))
    holder.start()
    deadline = time.monotonic() + 60
    while provider.token_calls == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    leased = ConnectionStore().get(KEY, "user-1")
    holder.kill()
    holder.join(10)
    provider.token_delay = 0.0

    reply = get_token(KEY, "user-1")
    after = ConnectionStore().get(KEY, "user-1")

    assert leased.lease_owner is not None, "the killed process held the lease"
    assert holder.exitcode is not None and holder.exitcode < 0
    assert provider.token_calls == 2
    assert reply["access_token"].startswith("at_")
    assert after.lease_owner is None and after.credentials_version == leased.credentials_version + 1
