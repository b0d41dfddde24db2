"""Shared fixtures. The library comes from $KEYWARD_LIB (scripts/test-python.sh sets it)."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import keyward

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
VECTORS = Path(os.environ.get("KEYWARD_VECTORS", REPO / "tests" / "vectors"))
HEADER = Path(os.environ.get("KEYWARD_HEADER", REPO / "include" / "keyward.h"))


def load_vectors(name: str) -> Any:
    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "keys.redb")


@pytest.fixture
def store(store_path: str) -> Iterator[keyward.Store]:
    s = keyward.Store(store_path)
    try:
        yield s
    finally:
        s.close()
