"""The suite turns deprecations into failures: a workbench call that uses a deprecated API fails its test."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.parametrize("kind", [DeprecationWarning, FutureWarning])
def test_a_deprecation_raised_during_a_test_fails_it(kind: type[Warning]) -> None:
    with pytest.raises(kind, match="an API going away"):
        warnings.warn("an API going away", kind, stacklevel=1)


def test_the_warnings_let_through_are_only_the_named_ones() -> None:
    # torch.ao's notice is let through by its message (see pyproject.toml); a look-alike is not
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("torch.ao.quantization is deprecated and will be removed", DeprecationWarning, stacklevel=1)
    assert caught == []
    with pytest.raises(DeprecationWarning):
        warnings.warn("torch.ao.something_else is deprecated", DeprecationWarning, stacklevel=1)
