"""Lazily created, shared boto3 clients.

boto3 is imported on first use, not at module import, to keep cold starts short; clients are
cached per container because creating one costs more than most calls made with it.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    """Return the container's client for an AWS service, honouring AWS_ENDPOINT_URL locally."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3,
                    read_timeout=10)
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
