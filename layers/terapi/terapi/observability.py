"""Logger, tracer and metrics shared by every function.

Messages are constant strings with keyword context; request bodies and events are never logged,
because they can carry credentials. botocore's own debug logging prints every request's
parameters, secret values included, so its loggers are held at WARNING whatever level the root
logger is given (Lambda's log-level setting included).
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

for _chatty in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

logger = Logger(service="terapi")
tracer = Tracer(service="terapi")
metrics = Metrics(namespace="Terapi", service="terapi")
