"""`orchestry COMMAND --help` says what the command does and what each argument is, not just usage:
`orchestry scale --help` showed `name replicas` with no word on either."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from orchestry_tui.cli.parser import build_parser


def commands(
    parser: argparse.ArgumentParser, prefix: str = "orchestry"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.endswith(f" {name}"):  # an alias shares its parser: once is enough
                    yield f"{prefix} {name}", sub
                    yield from commands(sub, f"{prefix} {name}")


def test_every_command_describes_itself_and_its_arguments() -> None:
    found = dict(commands(build_parser()))
    assert {"orchestry scale", "orchestry secret set", "orchestry db upgrade"} <= set(found)
    for name, parser in found.items():
        text = parser.format_help()
        assert parser.description, f"`{name} --help` does not say what it does:\n{text}"
        for action in parser._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"`{name} --help` leaves {action.dest!r} unexplained:\n{text}"


def test_scale_help_reads_as_a_sentence() -> None:
    text = dict(commands(build_parser()))["orchestry scale"].format_help()
    assert "Set an app's replica count." in text
    assert "the replica count, 0-100" in text


def test_the_token_flag_works_after_the_subcommand() -> None:
    args = build_parser().parse_args(["list", "--token", "t0k"])
    assert args.token == "t0k"
    before = build_parser().parse_args(["--token", "t0k", "list"])
    assert before.token == "t0k"  # given before the subcommand, not overwritten by its default


NOT = "is not a command of orchestry"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["ps"], f"orchestry: error: 'ps' {NOT}: did you mean `orchestry list`?"),
        (["rm", "web"], f"orchestry: error: 'rm' {NOT}: did you mean `orchestry delete`?"),
        (["lgos", "web"], f"orchestry: error: 'lgos' {NOT}: did you mean `orchestry logs`?"),
        (
            ["secret", "lsit"],
            f"orchestry secret: error: 'lsit' {NOT} secret: did you mean `orchestry secret list`?",
        ),
        (["frobnicate"], f"orchestry: error: 'frobnicate' {NOT}"),
    ],
)
def test_an_unknown_command_suggests_the_one_meant(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docker Compose and kubectl words (ps, rm, get) and typos get the orchestry command, instead of
    "invalid choice: 'ps' (choose from" all 27 commands."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(line) and last.endswith("--help` lists them)"), last
