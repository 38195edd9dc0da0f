"""`orchestry COMMAND --help` says what the command does and what each argument is, not just usage:
`orchestry scale --help` showed `name replicas` with no word on either."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

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
