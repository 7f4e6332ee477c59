"""An in-process AWS (moto) provisioned from template.yaml, the API called through the local
gateway, and an AWS call counter built on botocore's `before-call`/`after-call` event hooks.

This is what the test suite's `aws` and `api` fixtures do, for a process that is not pytest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    BASE_AWS_ENV,
    TEMPLATE_PATH,
    ensure_layer_on_path,
    forget_cached_configuration,
    set_env,
)

SECRET_KEY = "bench-secret-key"  # noqa: S105 - a local, throwaway key
PUBLIC_URL = "http://localhost:3003"


@dataclass
class Reply:
    """A gateway reply: status, parsed body (JSON or text) and lower-case headers."""

    status: int
    body: Any
    headers: dict[str, str]


class LocalClient:
    """Sends requests through the dev server's gateway in-process (router, authorizer, handler)."""

    def __init__(self, api: Any):
        self.local_api = api

    def request(self, method: str, path: str, *, json_body: Any = None,
                headers: dict[str, str] | None = None, key: str | None = SECRET_KEY) -> Reply:
        """One request; `key=None` sends no Authorization header (the public OAuth routes)."""
        from devserver.gateway import RawRequest

        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        data = b""
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        raw = self.local_api.handle(RawRequest(method=method, target=path,
                                               headers=list(sent.items()), body=data))
        text = raw.body.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Reply(raw.status, parsed, {k.lower(): v for k, v in raw.headers})


@contextmanager
def local_aws(extra_env: dict[str, str] | None = None) -> Iterator[tuple[LocalClient, Any]]:
    """moto's in-process mock with the template's resources; yields the API client and template."""
    import os

    from moto import mock_aws

    from devserver import moto_fixes
    from devserver.functions import forget_loaded_functions
    from devserver.gateway import LocalApi
    from devserver.provision import provision_resources
    from devserver.template import load_template

    ensure_layer_on_path()
    moto_fixes.apply()
    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    set_env({**BASE_AWS_ENV, "POWERTOOLS_TRACE_DISABLED": "1", **(extra_env or {})})
    try:
        with mock_aws():
            forget_cached_configuration()
            template = load_template(TEMPLATE_PATH, parameter_overrides={"PublicUrl": PUBLIC_URL})
            provisioned = provision_resources(template, secret_key=SECRET_KEY)
            set_env({**provisioned.env, "POWERTOOLS_LOG_LEVEL": "WARNING"})
            forget_cached_configuration()
            forget_loaded_functions()
            api = LocalApi(template, domain=PUBLIC_URL.split("//", 1)[1])
            yield LocalClient(api), template
    finally:
        os.environ.clear()
        os.environ.update(saved)
        forget_cached_configuration()


@dataclass
class CallCounter:
    """Records every AWS call of this process as `service.Operation`, via botocore event hooks.

    Terapi creates its clients from fresh boto3 sessions, so the hooks are attached to every
    client as it is created; `Query` replies are kept so their ScannedCount can be reported.
    """

    calls: list[str] = field(default_factory=list)
    query_replies: list[dict[str, Any]] = field(default_factory=list)
    active: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        """Attach the hooks to every botocore client created from now on in this process."""
        from botocore.client import ClientCreator

        counter = self
        original = ClientCreator.create_client
        if getattr(original, "_bench_counter", None) is not None:
            original = original._bench_original  # type: ignore[attr-defined]

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(creator, *args, **kwargs)
            client.meta.events.register("before-call.*.*", counter._before)
            client.meta.events.register("after-call.*.*", counter._after)
            return client

        create_client._bench_counter = self  # type: ignore[attr-defined]
        create_client._bench_original = original  # type: ignore[attr-defined]
        ClientCreator.create_client = create_client  # type: ignore[method-assign]

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """Count the calls made inside the block; yields the list being filled."""
        with self.lock:
            self.calls, self.query_replies, self.active = [], [], True
        try:
            yield self.calls
        finally:
            self.active = False

    def _before(self, model: Any, **_: Any) -> None:
        if self.active:
            with self.lock:
                self.calls.append(f"{model.service_model.service_id.hyphenize()}.{model.name}")

    def _after(self, model: Any, parsed: Any = None, **_: Any) -> None:
        if self.active and model.name == "Query" and isinstance(parsed, dict):
            with self.lock:
                self.query_replies.append({"Count": parsed.get("Count"),
                                           "ScannedCount": parsed.get("ScannedCount"),
                                           "Items": parsed.get("Items", [])})
