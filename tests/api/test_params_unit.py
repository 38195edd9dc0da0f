"""Parsing of durations, times and bodies: every bad input is a BadRequest naming the field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.api import params
from core.api.auth import is_loopback_host, required_token, token_matches
from core.errors import BadRequest, SettingsError


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert params.parse_duration(text) == seconds


def test_since_accepts_epoch_or_duration_ago() -> None:
    assert params.parse_time("1700000000.5") == 1700000000.5
    assert params.parse_time("1h", now=10_000) == 6400
    for bad in ("yesterday", "-5", "nan", "1w"):
        with pytest.raises(ValueError):
            params.parse_time(bad)


@given(st.text(max_size=20))
def test_parse_time_never_raises_anything_but_value_error(text: str) -> None:
    try:
        value = params.parse_time(text, now=1e9)
    except ValueError:
        return
    assert math.isfinite(value), (text, value)
    try:
        as_number = float(text)
    except ValueError:  # a duration: that long before ``now``, never after it
        assert value <= 1e9, (text, value)
    else:
        assert value == as_number >= 0, (text, value)


def test_int_field_names_the_field_and_range() -> None:
    assert params.int_field({"replicas": 3}, "replicas", 0, 100) == 3
    for body in ({}, {"replicas": "3"}, {"replicas": True}, {"replicas": 101}, {"replicas": 2.5}):
        with pytest.raises(BadRequest, match="'replicas'"):
            params.int_field(body, "replicas", 0, 100)


def test_object_and_bool_fields() -> None:
    with pytest.raises(BadRequest, match="'policy'"):
        params.object_field({"policy": [1]}, "policy")
    with pytest.raises(BadRequest, match="'evaluate'"):
        params.bool_field({"evaluate": "yes"}, "evaluate", True)
    with pytest.raises(BadRequest, match="'rps'"):
        params.number_field({"rps": -1}, "rps")


def test_loopback_needs_no_token_elsewhere_one_is_required() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0")
    assert required_token("127.0.0.1", None) is None
    with pytest.raises(SettingsError, match="ORCHESTRY_API_TOKEN"):
        required_token("0.0.0.0", None)
    assert required_token("0.0.0.0", "t0ken-long") == "t0ken-long"


def test_token_compare() -> None:
    assert token_matches("Bearer s3cret-token", "s3cret-token")
    assert token_matches("bearer s3cret-token", "s3cret-token")
    assert not token_matches("Bearer s3cret-tokeN", "s3cret-token")
    assert not token_matches("Basic s3cret-token", "s3cret-token")
    assert not token_matches(None, "s3cret-token")
    assert not token_matches("Bearer ", "s3cret-token")
