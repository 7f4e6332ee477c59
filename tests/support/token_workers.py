"""Code run in separate processes by the refresh-concurrency tests: each process is a container.

Processes are started with the `spawn` method, so each imports Terapi afresh, with its own
boto3 clients and its own secret cache, exactly like separate Lambda containers.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any


def connect_expired(provider: Any, provider_config_key: str,
                    connection_id: str = "user-1") -> dict[str, Any]:
    """Create a generic OAuth integration on `provider` and a connection whose token expired.

    Called in the parent process, through the services, before the workers start.
    """
    from terapi.models import CreateConnectionRequest, CreateIntegrationRequest
    from terapi.services.connections import import_connection
    from terapi.services.integrations import create_integration

    create_integration(CreateIntegrationRequest(
        provider_config_key=provider_config_key, provider="oauth2",
        oauth_client_id=provider.client_id, oauth_client_secret=provider.client_secret,
        authorization_url=provider.url("/authorize"), token_url=provider.url("/token")))
    issued = provider.issue_tokens()
    import_connection(CreateConnectionRequest(
        connection_id=connection_id, provider_config_key=provider_config_key,
        credentials={"access_token": issued["access_token"],
                     "refresh_token": issued["refresh_token"],
                     "expires_at": "2020-01-01T00:00:00Z"}))
    return issued


def ask_for_tokens(env: dict[str, str], provider_config_key: str, connection_id: str,
                   threads: int, start_at: float) -> list[str]:
    """Call the token service from `threads` threads at the same instant; return what each got."""
    os.environ.update(env)
    from terapi.errors import TerapiError
    from terapi.services.tokens import get_token

    results: list[str] = [""] * threads
    barrier = threading.Barrier(threads)

    def ask(index: int) -> None:
        barrier.wait()
        time.sleep(max(0.0, start_at - time.time()))
        try:
            results[index] = get_token(provider_config_key, connection_id)["access_token"]
        except TerapiError as exc:
            results[index] = f"error:{exc.code}"

    workers = [threading.Thread(target=ask, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def hold_refresh(env: dict[str, str], provider_config_key: str, connection_id: str) -> None:
    """Start a refresh and block in it (the provider is slow); the test kills this process."""
    os.environ.update(env)
    from terapi.services.tokens import get_token

    get_token(provider_config_key, connection_id)
