"""CPU and memory quantities as people write them in app specs ("500m", 0.5, "256Mi", "1G").

Kubernetes' conventions: CPU in cores or millicores ("m"), memory with binary (Ki, Mi, Gi) or
decimal (K, M, G) suffixes.  Errors are ``ValueError`` with a sentence saying what is accepted; the
spec parser prefixes the field path.
"""

from __future__ import annotations

import re
from decimal import Decimal

CPU_MIN_MILLIS = 10
CPU_MAX_MILLIS = 64_000
MEMORY_MIN_BYTES = 4 * 1024**2
MEMORY_MAX_BYTES = 256 * 1024**3

MEMORY_UNITS: dict[str, int] = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
}

_CPU_PATTERN = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(m?)$")
_MEMORY_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|K|M|G)?$")
_CPU_HINT = 'use cores (e.g. 0.5 or "2") or millicores (e.g. "500m")'
_MEMORY_HINT = "use a number with Ki, Mi, Gi, K, M or G (e.g. 256Mi)"


def _shown(value: object) -> str:
    """The input as messages show it: a digit string of any length must not make the message as long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_cpu(value: object) -> int:
    """Millicores from ``"500m"``, ``0.5``, ``"2"`` or ``2``; 10m to 64 cores."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{_shown(value)} is not a CPU amount: {_CPU_HINT}")
    text = str(value).strip()
    match = _CPU_PATTERN.match(text)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a CPU amount: {_CPU_HINT}")
    number = Decimal(match.group(1))
    millis = number if match.group(2) else number * 1000
    if millis != millis.to_integral_value():
        raise ValueError(
            f'{_shown(value)} is finer than one millicore: round it to whole millicores (e.g. "250m")'
        )
    result = int(millis)
    if not CPU_MIN_MILLIS <= result <= CPU_MAX_MILLIS:
        raise ValueError(f"{_shown(value)} is out of range: use between 10m and 64 cores")
    return result


def parse_memory(value: object) -> int:
    """Bytes from ``"256Mi"``, ``"1G"``, ``"1.5Gi"`` or a plain byte count; 4Mi to 256Gi."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{_shown(value)} is not a memory size: {_MEMORY_HINT}")
    text = str(value).strip()
    match = _MEMORY_PATTERN.match(text)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a memory size: {_MEMORY_HINT}")
    number = Decimal(match.group(1))
    unit = match.group(2)
    result = int(number * MEMORY_UNITS[unit]) if unit else int(number)
    if not MEMORY_MIN_BYTES <= result <= MEMORY_MAX_BYTES:
        raise ValueError(f"{_shown(value)} is out of range: use between 4Mi and 256Gi")
    return result


def format_cpu(millis: int) -> str:
    """Canonical text for a CPU amount: always millicores, e.g. ``"500m"``."""
    return f"{millis}m"


def format_memory(size: int) -> str:
    """Canonical text for a memory size: the largest unit that divides it exactly."""
    for unit in ("Gi", "Mi", "Ki", "G", "M", "K"):
        factor = MEMORY_UNITS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def readable_memory(size: int) -> str:
    """A memory size for people, rounded: ``"23.5Gi"``, ``"256Mi"``, ``"12Ki"``."""
    if size >= MEMORY_UNITS["Gi"]:
        return f"{size / MEMORY_UNITS['Gi']:.1f}Gi"
    if size >= MEMORY_UNITS["Mi"]:
        return f"{size / MEMORY_UNITS['Mi']:.0f}Mi"
    return f"{size / MEMORY_UNITS['Ki']:.0f}Ki"
