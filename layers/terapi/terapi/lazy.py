"""Modules loaded on first attribute access, so a function's import does only what every
request needs (the standard library's `importlib.util.LazyLoader` recipe).

Handlers name their services and models at module level, as usual, but pay for importing them
(pydantic model building above all) only when a route first uses them.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """Return `name` as a module that executes on first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
