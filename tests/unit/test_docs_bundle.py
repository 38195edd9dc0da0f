"""The support bundle's table, in the README and in docs/troubleshooting.md, is the same table and
names the members core/diagnostics.py writes, no more and no fewer."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (ROOT / "core" / "diagnostics.py").read_text()


def bundle_table(path: Path) -> list[str]:
    text = path.read_text()
    start = text.index("| question | member of the bundle |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def members(rows: list[str]) -> set[str]:
    """The bundle paths the "member" column names (`nginx/conf.d/` stands for every file in it)."""
    named = set()
    for row in rows:
        member_cell = row.strip("|").split("|", 1)[1]
        named |= {m for m in re.findall(r"`([^` ]+)`", member_cell) if re.search(r"\.\w+$|/$", m)}
    return named


def written() -> set[str]:
    """The member names core/diagnostics.py builds, with f-string fields as written (`{name}`)."""
    return set(re.findall(r"""f?"((?:apps|nginx)/[^"]+|[a-z_]+\.(?:json|log|txt))"(?=\]|:)""", SOURCE))


def as_pattern(member: str) -> re.Pattern[str]:
    """`apps/<app>/logs/<container>.log` matches `apps/{name}/logs/{container.name}.log`."""
    parts = re.split(r"<[^>]+>", member)
    return re.compile("^" + r"\{[^}]+\}".join(re.escape(part) for part in parts) + "$")


def test_the_readme_and_the_guide_show_the_same_table() -> None:
    assert bundle_table(ROOT / "README.md") == bundle_table(ROOT / "docs" / "troubleshooting.md")


def test_every_member_the_table_names_is_written_and_every_member_written_is_named() -> None:
    named, built = members(bundle_table(ROOT / "README.md")), written()
    assert len(built) >= 15, built
    for member in named:
        if member.startswith("nginx/") and member.endswith(("/", ".conf")):
            # nginx.conf and conf.d/: every *.conf under the prefix, file by file
            assert 'rglob("*.conf")' in SOURCE and 'f"nginx/{path.relative_to(prefix)}"' in SOURCE, member
            continue
        assert any(as_pattern(member).match(b) for b in built), f"the bundle has no {member}"
    for member in built:
        if member.startswith("nginx/{"):
            continue  # the conf.d files
        assert any(as_pattern(n).match(member) for n in named), f"the table does not name {member}"
