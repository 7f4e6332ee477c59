"""`python -m bench` (`make bench`): run every benchmark, print Markdown, write results JSON.

Exit status 0 whether or not targets are met (these are reports, not tests); 1 only when a
benchmark itself broke. Sections can be skipped or resized with flags, e.g. `--quick`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, progress

SECTIONS = ("cold_start", "aws_calls", "burst", "scale", "throughput", "cost")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: sizes of each benchmark and which ones to skip."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    parser.add_argument("--only", action="append", default=[], choices=SECTIONS)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=25)
    parser.add_argument("--provider-delay", type=float, default=0.25,
                        help="seconds the loopback token endpoint takes to answer")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes everywhere, for checking the benchmarks themselves")
    args = parser.parse_args(argv)
    if args.quick:
        args.cold_runs, args.processes, args.threads = 2, 2, 5
        args.sizes, args.requests, args.seconds = "1000", 200, 5.0
    return args


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {"commit": _git("rev-parse", "--short", "HEAD").strip(),
            "uncommitted": [line[3:] for line in _git("status", "--porcelain", "--",
                                                       "functions", "layers").splitlines()],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nproc": os.cpu_count(), "python": f"Python {platform.python_version()}",
            "platform": platform.platform(), "machine": platform.machine(),
            "load_average": ", ".join(f"{v:.2f}" for v in load)}


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections in order; a broken one is reported and the rest still run."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from bench import burst, calls, coldstart, cost, report, scale, throughput

    chosen = [s for s in SECTIONS if (not args.only or s in args.only) and s not in args.skip]
    if "cost" in chosen and "aws_calls" not in chosen:
        chosen.insert(chosen.index("cost"), "aws_calls")
    results: dict[str, Any] = {"machine": machine(), "sections": {}, "errors": {}}
    memory = _memory_sizes()
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "cold_start": lambda: coldstart.run(args.cold_runs, min(3, args.cold_runs),
                                            min(3, args.cold_runs)),
        "aws_calls": lambda: calls.run(50 if args.quick else 200),
        "burst": lambda: burst.run(args.processes, args.threads, args.provider_delay),
        "scale": lambda: scale.run(tuple(int(s) for s in args.sizes.split(","))),
        "throughput": lambda: throughput.run(args.requests, args.seconds, args.concurrency),
        "cost": lambda: cost.run(results["sections"]["aws_calls"], memory),
    }
    for name in chosen:
        progress(f"section {name}")
        began = time.monotonic()
        try:
            # Powertools prints metrics (EMF) to stdout; stdout is kept for the report.
            with contextlib.redirect_stdout(sys.stderr):
                results["sections"][name] = runners[name]()
        except Exception as exc:  # noqa: BLE001 - a broken section is reported, others run
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
        progress(f"section {name} took {time.monotonic() - began:.1f} s")
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report.markdown(results))
    progress(f"results written to {RESULTS_DIR / 'latest.json'}")
    return 1 if results["errors"] else 0


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository, or an empty string."""
    import subprocess

    command = ["git", *args]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)
    return done.stdout.rstrip()


def _memory_sizes() -> dict[str, int]:
    from bench.common import TEMPLATE_PATH
    from devserver.template import load_template

    template = load_template(TEMPLATE_PATH)
    return {name: spec.memory_size for name, spec in template.functions.items()}


if __name__ == "__main__":
    sys.exit(main())
