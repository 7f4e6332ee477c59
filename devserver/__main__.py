"""`python -m devserver`: serve the API locally on an embedded AWS until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from devserver import DevServer, PortInUse, secret_key_from_env, start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; `--aws-port` defaults to the API port plus one."""
    parser = argparse.ArgumentParser(prog="devserver", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3003")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aws-port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.aws_port is None:
        args.aws_port = args.port + 1 if args.port else 0
    return args


def banner(server: DevServer) -> str:
    """What the developer needs to use the running server."""
    table = server.table_names[0] if server.table_names else "<table>"
    key = server.secret_key or "<secret key>"
    endpoint = server.aws_endpoint
    return "\n".join([
        "Terapi dev server",
        f"  API:          {server.public_url}",
        f"  Secret key:   {key}",
        f"  Embedded AWS: {endpoint}",
        f"  Inspect:      aws --endpoint-url {endpoint} dynamodb scan --table-name {table}",
        f"  Try:          curl -H 'Authorization: Bearer {key}' "
        f"{server.public_url}/providers",
        "Press Ctrl-C to stop.",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; 0 on a clean stop, 1 when a port is taken."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s "
                                                   "%(message)s")
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stopping = threading.Event()

    def request_stop(_signal: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        server = start(args.port, args.aws_port, secret_key=secret_key_from_env(),
                       host=args.host)
    except PortInUse as exc:
        print(f"devserver: {exc}; choose another with --port/--aws-port", file=sys.stderr)
        return 1
    print(banner(server), flush=True)
    while not stopping.wait(0.5):
        pass
    print("Stopping.", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
