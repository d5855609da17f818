"""The function's main.py loaded afresh, as a new Lambda instance (or Cloud Functions instance)
loads it: each call is a new module with its own lazily built runtime."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

MAIN = Path(__file__).resolve().parents[1] / "function" / "main.py"


def fresh_main() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fresh_main", MAIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
