"""Names a module re-exports from others, imported on first use (PEP 562), so that importing it stays cheap."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(module: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module`` that imports each name of ``homes`` (name -> the module it
    lives in, absolute or relative to ``module``) when it is first asked for, and keeps it in ``module``.

    >>> __getattr__ = lazy_getattr(__name__, {"ServerConfig": ".config"})  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(import_module(home, module), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
