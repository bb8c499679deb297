"""Shared fixtures (helpers live in tests/helpers)."""
from __future__ import annotations

import pytest

from helpers import make_cfg, tiny_model


@pytest.fixture
def cfg_factory():
    return make_cfg


@pytest.fixture
def model():
    return tiny_model()
