"""Records the application's AWS calls through botocore's `before-call` events, and can fail one.

Used to count calls per operation (warm path cost, no scans) and to inject a fault at a given
call (the stores' write-ordering tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

SERVICES = ("dynamodb", "secretsmanager")


@dataclass
class AwsCalls:
    """Within `with`, records each call's operation name; the one at `fail_at` (0-based) fails."""

    fail_at: int | None = None
    calls: list[str] = field(default_factory=list)

    def __enter__(self) -> AwsCalls:
        from terapi.aws import client

        for service in SERVICES:
            client(service).meta.events.register("before-call.*.*", self._before_call)
        return self

    def __exit__(self, *_: object) -> None:
        from terapi.aws import client

        for service in SERVICES:
            client(service).meta.events.unregister("before-call.*.*", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        position = len(self.calls)
        self.calls.append(model.name)
        if position == self.fail_at:
            raise ClientError({"Error": {"Code": "InternalServerError",
                                         "Message": "injected fault"}}, model.name)
