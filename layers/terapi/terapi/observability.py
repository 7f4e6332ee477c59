"""Logger, tracer and metrics shared by every function.

Messages are constant strings with keyword context; request bodies and events are never logged,
because they can carry credentials.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="terapi")
tracer = Tracer(service="terapi")
metrics = Metrics(namespace="Terapi", service="terapi")
