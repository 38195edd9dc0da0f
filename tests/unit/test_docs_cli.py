"""Every `orchestry` command the README and docs/ show exists, with the flags they give it.

A command in a shell block is parsed whole by the real parser (a wrong positional or choice fails too);
one quoted in running text may be a fragment (`orchestry secret set`), so only its subcommands and
flags are checked.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from orchestry_tui.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A command starts a line, or follows `$ `, a shell operator, `(`, `` ` `` or `VAR=value `.
# Not "an orchestry daemon, pid 42" (quoted output: prose about a process).
COMMAND = re.compile(
    r"(?:^|[\s;&|(`$]|=\S*\s)(?<!\ban )(?<!\ba )(?<!\bthe )"
    r"(?:\.venv/bin/)?orchestry(?=\s|$|`)((?:\s[^`#|&;)<>]*)?)"
)
PLACEHOLDERS = ("...", "…", "[", "{")


def fenced_lines(text: str) -> list[str]:
    """The lines inside ``` fences (any language)."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", "\n".join(_outside_fences(text)))


def _outside_fences(text: str) -> list[str]:
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            kept.append(line)
    return kept


def commands(source: str) -> list[list[str]]:
    """The argument lists of every `orchestry` command in a line or span (words after the program)."""
    found = []
    for match in COMMAND.finditer(source):
        rest = match.group(1).strip()
        if rest.startswith(("daemon ready:", "demo:")):  # quoted output, not a command
            continue
        try:
            found.append(shlex.split(rest))
        except ValueError:
            found.append(rest.split())
    return found


def shown_commands() -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(whole commands from shell blocks, fragments from running text), each with where it is."""
    whole, fragments = [], []
    for path in DOCS:
        text = path.read_text()
        for line in fenced_lines(text):
            for words in commands(line.split(" # ")[0]):
                whole.append((f"{path.name}: {line.strip()}", words))
        for span in code_spans(text):
            for words in commands(span):
                fragments.append((f"{path.name}: `{span}`", words))
    return whole, fragments


WHOLE, FRAGMENTS = shown_commands()


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def check_words(words: list[str]) -> None:
    """Each subcommand named exists, and each flag is one its parser (or an outer one) accepts."""
    parser = build_parser()
    chain = [parser]
    descended_past_placeholder = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            action = next(
                (p._option_string_actions[flag] for p in chain if flag in p._option_string_actions), None
            )
            assert action is not None, f"{flag} is not a flag of `orchestry {' '.join(words)}`"
            if "=" not in word and _takes_value(action) and index < len(words):
                if action.nargs != "?" or not words[index].startswith("-"):
                    index += 1
            continue
        sub = _subparsers(chain[-1])
        if sub is None or descended_past_placeholder:
            continue  # a positional argument
        if any(mark in word for mark in PLACEHOLDERS) or word.isupper():
            descended_past_placeholder = True  # `orchestry COMMAND ...`: not a subcommand; flags still count
            continue
        assert word in sub.choices, f"{word!r} is not an `orchestry` subcommand (in {' '.join(words)})"
        chain.append(sub.choices[word])


def test_the_docs_show_commands_at_all() -> None:
    assert len(WHOLE) >= 20 and len(FRAGMENTS) >= 40, (len(WHOLE), len(FRAGMENTS))


@pytest.mark.parametrize(("where", "words"), WHOLE, ids=[w for w, _ in WHOLE])
def test_every_command_in_a_shell_block_parses(where: str, words: list[str]) -> None:
    check_words(words)
    if any(mark in " ".join(words) for mark in PLACEHOLDERS):
        return
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{where}: the parser refuses `orchestry {' '.join(words)}` (exit {exc.code})")


@pytest.mark.parametrize(("where", "words"), FRAGMENTS, ids=[w for w, _ in FRAGMENTS])
def test_every_command_in_the_text_names_real_subcommands_and_flags(where: str, words: list[str]) -> None:
    check_words(words)


def test_a_wrong_flag_or_subcommand_is_caught() -> None:
    """The checks above would notice a renamed flag or subcommand."""
    with pytest.raises(AssertionError, match="--tails"):
        check_words(["logs", "web", "--tails", "5"])
    with pytest.raises(AssertionError, match="'statuss'"):
        check_words(["statuss", "web"])
