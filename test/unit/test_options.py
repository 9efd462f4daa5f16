"""Property tests of option validation: no value is accepted that the engine cannot use."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.espeak import ESPEAK_OPTIONS
from ishowtts_ros.engines.f5.options import F5_OPTIONS

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize("spec", [*F5_OPTIONS.values(), *ESPEAK_OPTIONS.values()], ids=lambda s: s.name)
@settings(max_examples=300, deadline=None)
@given(value=ANY_VALUE)
def test_accepted_values_are_usable(spec, value):
    try:
        accepted = spec.validate(value)
    except EngineError as exc:
        assert spec.name in str(exc)
        return
    assert type(accepted) is spec.kind
    assert math.isfinite(accepted)
    assert spec.minimum <= accepted <= spec.maximum


@pytest.mark.slow  # in make test, not in make check's edit loop
def test_nfe_bounds_match_the_sampler(tiny_engine):
    """The extremes the validation admits really run."""
    for nfe in (F5_OPTIONS["nfe_step"].minimum, F5_OPTIONS["nfe_step"].maximum):
        assert tiny_engine.synthesize_all("Bounds.", options={"nfe_step": nfe, "seed": 1}).audio_seconds > 0
