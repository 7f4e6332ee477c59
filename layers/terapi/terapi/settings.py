"""One settings model for every function, read lazily so importing a module needs no environment.

Every value comes from an environment variable that `template.yaml` sets; the local gateway sets
the same variables from the same template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    """Deployment configuration shared by all functions."""

    table_name: str
    secret_prefix: str
    secret_key_arn: str
    public_url: str
    secret_recovery_days: int
    metadata_max_bytes: int
    refresh_lease_seconds: float
    refresh_wait_seconds: float
    refresh_cooldown_seconds: int
    refresh_attempts: int
    webhook_queue_url: str = ""
    webhook_signing_key_arn: str = ""
    webhook_timeout_seconds: float = 8.0
    webhook_retry_base_seconds: int = 30
    allow_loopback_webhooks: bool = False


@cache
def get_settings() -> Settings:
    """Read the settings once per container; tests clear the cache to change them."""
    env = os.environ
    return Settings(
        table_name=env.get("TERAPI_TABLE_NAME", "terapi"),
        secret_prefix=env.get("TERAPI_SECRET_PREFIX", "terapi").strip("/"),
        secret_key_arn=env.get("TERAPI_SECRET_KEY_ARN", ""),
        public_url=env.get("TERAPI_PUBLIC_URL", ""),
        secret_recovery_days=int(env.get("TERAPI_SECRET_RECOVERY_DAYS", "7")),
        metadata_max_bytes=int(env.get("TERAPI_METADATA_MAX_BYTES", "16384")),
        refresh_lease_seconds=float(env.get("TERAPI_REFRESH_LEASE_SECONDS", "45")),
        refresh_wait_seconds=float(env.get("TERAPI_REFRESH_WAIT_SECONDS", "10")),
        refresh_cooldown_seconds=int(env.get("TERAPI_REFRESH_COOLDOWN_SECONDS", "300")),
        refresh_attempts=int(env.get("TERAPI_REFRESH_ATTEMPTS", "3")),
        webhook_queue_url=env.get("TERAPI_WEBHOOK_QUEUE_URL", ""),
        webhook_signing_key_arn=env.get("TERAPI_WEBHOOK_SIGNING_KEY_ARN", ""),
        webhook_timeout_seconds=float(env.get("TERAPI_WEBHOOK_TIMEOUT_SECONDS", "8")),
        webhook_retry_base_seconds=int(env.get("TERAPI_WEBHOOK_RETRY_BASE_SECONDS", "30")),
        allow_loopback_webhooks=env.get("TERAPI_ALLOW_LOOPBACK_WEBHOOKS", "").lower() == "true",
    )
