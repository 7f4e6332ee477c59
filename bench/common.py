"""Helpers shared by the benchmarks: statistics, ports, progress, and an embedded AWS on loopback.

Importing this module is cheap (no boto3, no moto), so cold-start children never pay for it.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_PATH = REPO_ROOT / "layers" / "terapi"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
BASE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "Terapi", "POWERTOOLS_LOG_LEVEL": "WARNING",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
}
_started = time.monotonic()


def progress(message: str) -> None:
    """Print a progress line to stderr with the seconds elapsed since the run began."""
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded for reports."""
    return round(seconds * 1000, 2)


def set_env(values: dict[str, str]) -> None:
    """Apply environment variables to this process."""
    os.environ.update(values)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


def forget_cached_configuration() -> None:
    """Drop Terapi's cached boto3 clients and settings (the endpoint or env changed)."""
    if "terapi.aws" in sys.modules:
        sys.modules["terapi.aws"].reset_clients()
    if "terapi.settings" in sys.modules:
        sys.modules["terapi.settings"].get_settings.cache_clear()


def ensure_layer_on_path() -> None:
    """Make `terapi` importable in this process, as the layer is on Lambda."""
    if str(LAYER_PATH) not in sys.path:
        sys.path.insert(0, str(LAYER_PATH))


@contextmanager
def moto_server() -> Iterator[dict[str, Any]]:
    """A moto server on 127.0.0.1, reset, provisioned from template.yaml; yields env and refs.

    This process's environment points at it while the block runs, so every process started
    from here (a "container") can reach the same AWS.
    """
    import logging

    from moto.server import ThreadedMotoServer

    from devserver import moto_fixes
    from devserver.provision import provision_resources
    from devserver.template import load_template

    moto_fixes.apply()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = dict(os.environ)
    try:
        # moto's backends are global to the process: start from an empty AWS.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/moto-api/reset")
        connection.getresponse().read()
        connection.close()
        env = {**BASE_AWS_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "POWERTOOLS_TRACE_DISABLED": "1"}
        set_env(env)
        forget_cached_configuration()
        template = load_template(TEMPLATE_PATH,
                                 parameter_overrides={"PublicUrl": "http://localhost:3003"})
        provisioned = provision_resources(template, secret_key="bench-secret-key")  # noqa: S106
        env.update(provisioned.env)
        env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        set_env(env)
        forget_cached_configuration()
        yield {"env": env, "template": template, "refs": provisioned.refs, "port": port,
               "secret_key": "bench-secret-key"}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        forget_cached_configuration()
        server.stop()
