"""Logger, tracer and metrics shared by every function.

Messages are constant strings with keyword context; request bodies and events are never logged,
because they can carry credentials. botocore's own debug logging prints every request's
parameters, secret values included, so its loggers are held at WARNING whatever level the root
logger is given (Lambda's log-level setting included).

Powertools' Tracer imports the X-Ray SDK when it is built, which costs more than the rest of a
function's imports together; it is built on the first invocation instead, so importing a
function stays cheap (Lambda's active tracing records the invocation itself either way).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

for _chatty in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

logger = Logger(service="terapi")
metrics = Metrics(namespace="Terapi", service="terapi")


class LazyTracer:
    """Powertools' Tracer with the same decorators, built on first use rather than at import."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Any = None

    def _real(self) -> Any:
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self._service)
        return self._tracer

    def capture_lambda_handler(self, *, capture_response: bool = False) -> Callable[..., Any]:
        """Trace a Lambda handler (subsegment, cold-start annotation, boto3 calls).

        Routes are not traced one by one: Powertools logs every exception a traced method
        raises, with its traceback, and a route's expected refusals are not errors.
        """
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            traced: Callable[..., Any] | None = None

            @functools.wraps(handler)
            def wrapper(event: Any, context: Any) -> Any:
                nonlocal traced
                if traced is None:
                    traced = self._real().capture_lambda_handler(
                        handler, capture_response=capture_response)
                return traced(event, context)

            return wrapper

        return decorate


tracer = LazyTracer(service="terapi")
