"""Code run in separate processes by the refresh-concurrency tests: each process is a container.

Processes are started with the `spawn` method, so each imports Terapi afresh, with its own
boto3 clients and its own secret cache, exactly like separate Lambda containers.
"""

from __future__ import annotations

import os
import threading
import time


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
