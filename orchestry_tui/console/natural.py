"""Natural order for names: app2 before app10, as people count."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key splitting ``name`` into text and numbers (numbers compare by value, before text)."""
    parts = (part for part in _DIGITS.split(name) if part)
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower()) for part in parts)
