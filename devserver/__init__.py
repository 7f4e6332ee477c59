"""The local runtime behind `make dev`: the whole API on an embedded AWS (moto), from the template.

`start()` runs moto's server, provisions the template's tables, secrets and queues in it, and
serves the template's routes through a local HTTP API that calls the same handlers and
authorizer AWS would, with the same events; scheduled and queue-driven functions run too.
Tests can call `start(port=0, aws_port=0)` in-process; `python -m devserver` is the CLI.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devserver.functions import REPO_ROOT, FunctionRunner, forget_loaded_functions
from devserver.gateway import GatewayServer, LocalApi
from devserver.provision import provision_resources
from devserver.template import REGION, Refs, Template, load_template
from devserver.workers import start_workers

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SECRET_KEY_VARIABLE = "TERAPI_SECRET_KEY"  # noqa: S105 - a variable name, not a key
log = logging.getLogger("devserver")


class PortInUse(OSError):
    """A port the dev server needs is already taken."""

    def __init__(self, port: int):
        super().__init__(f"port {port} is already in use")
        self.port = port


@dataclass
class DevServer:
    """A running dev server: its URLs, the API secret key, and `stop()`."""

    url: str
    public_url: str
    aws_endpoint: str
    secret_key: str | None
    template: Template
    refs: Refs
    table_names: list[str]
    _http: GatewayServer
    _moto: object
    _stop: threading.Event
    _threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the HTTP server, the background workers and the embedded AWS."""
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=3)
        self._moto.stop()  # type: ignore[attr-defined]


def _check_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(port) from exc


def _reset_embedded_aws(port: int) -> None:
    """Start from an empty AWS: moto's state is per process, shared by every server in it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/moto-api/reset")
        connection.getresponse().read()
    finally:
        connection.close()


def _point_boto_at(endpoint: str) -> None:
    """Send every AWS call of this process to the embedded moto server."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.pop("AWS_PROFILE", None)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"
    for name in ("NO_PROXY", "no_proxy"):
        local = "127.0.0.1,localhost"
        os.environ[name] = f"{os.environ[name]},{local}" if os.environ.get(name) else local
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Terapi")
    # Local receivers (http://localhost:...) are how webhooks are tried out on a laptop; a
    # deployed stack never sets this, so it accepts https receivers only.
    os.environ.setdefault("TERAPI_ALLOW_LOOPBACK_WEBHOOKS", "true")


def _forget_cached_configuration() -> None:
    """Drop clients and settings a previous in-process start cached (tests start several)."""
    if "terapi.aws" in sys.modules:
        sys.modules["terapi.aws"].reset_clients()
    if "terapi.settings" in sys.modules:
        sys.modules["terapi.settings"].get_settings.cache_clear()


def start(port: int = 0, aws_port: int = 0, *, secret_key: str | None = None,
          host: str = "127.0.0.1", template_path: str | Path = TEMPLATE_PATH) -> DevServer:
    """Start moto, provision the template in it and serve the API; port 0 picks a free one."""
    from moto.server import ThreadedMotoServer

    from devserver import moto_fixes

    moto_fixes.apply()
    if logging.getLogger("werkzeug").level == logging.NOTSET:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _check_free("127.0.0.1", aws_port)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=aws_port, verbose=False)
    moto.start()
    moto_port = moto.get_host_and_port()[1]
    endpoint = f"http://127.0.0.1:{moto_port}"
    _reset_embedded_aws(moto_port)
    try:
        http = GatewayServer((host, port))
    except OSError as exc:
        moto.stop()
        raise PortInUse(port) from exc
    try:
        public_url = f"http://localhost:{http.port}"
        _point_boto_at(endpoint)
        template = load_template(template_path, parameter_overrides={"PublicUrl": public_url})
        provisioned = provision_resources(template, secret_key=secret_key)
        os.environ.update(provisioned.env)
        _forget_cached_configuration()
        forget_loaded_functions()
        runner = FunctionRunner(template)
        runner.load_all()
        http.api = LocalApi(template, domain=f"localhost:{http.port}", runner=runner)
    except BaseException:
        http.server_close()
        moto.stop()
        raise
    stop = threading.Event()
    serving = threading.Thread(target=http.serve_forever, name="gateway", daemon=True)
    serving.start()
    threads = start_workers(template, provisioned.refs, runner, stop)
    return DevServer(url=f"http://{host}:{http.port}", public_url=public_url,
                     aws_endpoint=endpoint, secret_key=provisioned.secret_key,
                     template=template, refs=provisioned.refs,
                     table_names=[template.table_name(t) for t in template.tables],
                     _http=http, _moto=moto, _stop=stop, _threads=[serving, *threads])


def secret_key_from_env() -> str | None:
    """The API secret key the developer chose (`TERAPI_SECRET_KEY`), if any."""
    return os.environ.get(SECRET_KEY_VARIABLE) or None
