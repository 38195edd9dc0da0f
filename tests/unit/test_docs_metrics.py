"""The README's table of Prometheus families is the page /metrics serves: the same names, types and
labels, no family missing from either side."""

from __future__ import annotations

import re
from pathlib import Path

from core.metrics import exposition as prometheus
from core.metrics.instruments import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# Mentioned in the prose under the table rather than in it.
IN_THE_PROSE = {"orchestry_metrics_series_dropped_total"}


def served() -> dict[str, tuple[str, tuple[str, ...]]]:
    """family name → (type, label names), as the page declares them."""
    families = [
        *REGISTRY.families(),
        *prometheus._app_families([]),
        *prometheus._node_families(False, 0),
        *prometheus._process_families(),
    ]
    return {family.name: (family.kind, family.labelnames) for family in families}


def expand(name: str) -> list[str]:
    """``a_{b,c}_d`` → a_b_d, a_c_d."""
    match = re.search(r"\{([^}]*)\}", name)
    if match is None:
        return [name]
    return [name[: match.start()] + part + name[match.end() :] for part in match.group(1).split(",")]


def table() -> list[tuple[list[str], list[str], set[str]]]:
    """(families, types, labels) of each row of the README's "| family | type | labels | what |" table."""
    start = README.index("| family | type | labels | what |")
    rows = []
    for line in README[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        family, kind, labels = (cell.strip() for cell in line.strip("|").split("|")[:3])
        names = [n for quoted in re.findall(r"`([^`]+)`", family) for n in expand(quoted)]
        kinds = [k.strip().rstrip("s") for k in kind.split(",") if k.strip()]
        rows.append((names, kinds, {label.strip() for label in labels.split(",")} - {"-", ""}))
    return rows


def test_every_family_in_the_table_is_served_with_its_type_and_labels() -> None:
    page = served()
    for names, kinds, labels in table():
        for name in names:
            assert name in page, f"the README lists {name}, which /metrics does not serve"
            kind, labelnames = page[name]
            if kinds:
                assert kind in kinds, f"{name} is a {kind}, the README says {', '.join(kinds)}"
            assert set(labelnames) <= labels, f"{name} has labels {labelnames}, the README says {labels}"
        if labels:
            used = {label for name in names for label in page[name][1]}
            assert labels <= used, f"the README gives {names} labels {labels - used} that none of them has"


def test_every_served_family_is_in_the_table() -> None:
    listed = {name for names, _, _ in table() for name in names}
    assert set(served()) - listed - IN_THE_PROSE == set()
    assert all(name in README for name in IN_THE_PROSE)
