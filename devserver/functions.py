"""Load each function's handler in-process, as Lambda would, and give it a Lambda-like context.

Every function has its own `app.py`, so each is imported under a unique module name
(`terapi_fn_<folder>`) rather than as `app`, and the layer folder goes on `sys.path` the way
`/opt/python` is on Lambda. Modules are imported once and cached, like a warm container.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from devserver.template import ACCOUNT_ID, REGION, STACK_NAME, Template

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_PATH = REPO_ROOT / "layers" / "terapi"
_modules: dict[Path, ModuleType] = {}
_import_lock = threading.Lock()


def ensure_layer_on_path(layer: Path = LAYER_PATH) -> None:
    """Put the shared layer on `sys.path`, as Lambda puts a layer's `python/` at `/opt/python`."""
    text = str(layer)
    if text not in sys.path:
        sys.path.insert(0, text)


def module_name(code_uri: str, handler_module: str) -> str:
    """A unique, importable module name for a function's handler module."""
    folder = Path(code_uri.rstrip("/")).name or "root"
    suffix = "" if handler_module == "app" else f"_{handler_module}"
    return "terapi_fn_" + re.sub(r"\W", "_", f"{folder}{suffix}")


def load_function(code_uri: str, handler: str, *, root: Path = REPO_ROOT) -> Callable[..., Any]:
    """The callable a function's `Handler` (`module.attribute`) names, imported once."""
    module_path, _, attribute = handler.rpartition(".")
    if not module_path:
        raise ValueError(f"handler '{handler}' must look like module.function")
    source = (root / code_uri / Path(*module_path.split("."))).with_suffix(".py")
    with _import_lock:
        module = _modules.get(source)
        if module is None:
            ensure_layer_on_path()
            name = module_name(code_uri, module_path)
            spec = importlib.util.spec_from_file_location(name, source)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {source}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            _modules[source] = module
    return getattr(module, attribute)


def forget_loaded_functions() -> None:
    """Drop every loaded handler module, so the next call imports afresh (a cold start)."""
    with _import_lock:
        for module in _modules.values():
            sys.modules.pop(module.__name__, None)
        _modules.clear()


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, *, timeout_seconds: int = 3, memory_mb: int = 128):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured Timeout would stop it."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionRunner:
    """Invokes the template's functions by logical id, each with a fresh Lambda context."""

    def __init__(self, template: Template):
        self._template = template

    def handler(self, logical_id: str) -> Callable[..., Any]:
        """The loaded handler of one function."""
        spec = self._template.functions[logical_id]
        return load_function(spec.code_uri, spec.handler, root=self._template.root)

    def load_all(self) -> None:
        """Import every function now, so a broken one fails at start rather than on a request."""
        for logical_id in self._template.functions:
            self.handler(logical_id)

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Call a function's handler in-process with `event` and a context like Lambda's."""
        spec = self._template.functions[logical_id]
        context = LambdaContext(f"{STACK_NAME}-{logical_id}", timeout_seconds=spec.timeout,
                                memory_mb=spec.memory_size)
        return self.handler(logical_id)(event, context)
