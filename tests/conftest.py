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


# Files whose tests take minutes in all (a module fixture that trains every figure's runs, CLI runs killed and
# resumed) go first: `make test` hands whole files to its two workers in collection order, so starting the
# longest ones first keeps the workers busy to the end.
LONGEST_FIRST = ("test_figures.py", "test_reliability.py", "test_protocol_and_sweeps.py")


def pytest_collection_modifyitems(items):
    """Put the tests of LONGEST_FIRST's files first, keeping the order within each file."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
