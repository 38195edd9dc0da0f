"""``orchestry completion bash|zsh``: shell completion generated from the argparse parser itself.

The script carries the parser's tree (subcommands, options, which options take a value and which
values, positionals) as bash associative arrays and one small function walks it; so a new subcommand
or flag completes without anyone editing the script. App names come from the daemon at completion
time (``orchestry completion apps``: a short request, nothing when no daemon answers). zsh runs the
same function through its ``bashcompinit`` layer.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field

# Positional or option destinations and what completes them.
FILE_DESTS = {"file", "paths", "filenames", "output", "policy", "apply"}
DIR_DESTS = {"state_dir"}
APP_DESTS = {"name", "app", "name_flag"}
# Subtrees whose NAME is not an app (a secret, a node).
NOT_APPS = {"secret", "node", "completion"}


@dataclass
class Level:
    commands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    value_options: dict[str, str] = field(default_factory=dict)  # option → kind of its value
    positionals: list[str] = field(default_factory=list)  # kinds, in order; a trailing "+" repeats


def _kind(action: argparse.Action, path: tuple[str, ...]) -> str:
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        return "choices:" + ",".join(str(c) for c in action.choices)
    dest = action.dest
    if dest in FILE_DESTS:
        return "file"
    if dest in DIR_DESTS:
        return "dir"
    if dest in APP_DESTS and not (set(path) & NOT_APPS):
        return "app"
    return "none"


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Level]:
    """Every command path of ``parser`` (``()`` is the top level) and what completes there."""
    level = Level()
    levels = {path: level}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                level.commands.append(name)
                levels.update(walk(sub, (*path, name)))
        elif action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            level.options.extend(action.option_strings)
            if action.nargs != 0:
                for option in action.option_strings:
                    level.value_options[option] = _kind(action, path)
        else:
            kind = _kind(action, path)
            if action.nargs in ("+", "*", argparse.REMAINDER):
                kind += "+"
            level.positionals.append(kind)
    return levels


def _assignments(array: str, values: dict[str, str]) -> list[str]:
    return [f"{array}[{shlex.quote(key)}]={shlex.quote(value)}" for key, value in sorted(values.items())]


FUNCTION = r"""
_orchestry_complete_kind() {
    local kind="${1%+}" cur="$2" program="$3" choices
    case "$kind" in
        choices:*)
            choices="${kind#choices:}"
            COMPREPLY=($(compgen -W "${choices//,/ }" -- "$cur"))
            ;;
        file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            ;;
        dir)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$cur"))
            ;;
        app)
            COMPREPLY=($(compgen -W "$("$program" completion apps "${@:4}" 2>/dev/null)" -- "$cur"))
            ;;
        *)
            COMPREPLY=()
            ;;
    esac
}

_orchestry() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="_" word i skip=0 npos=0
    local -a daemon=()  # --url given on the line: app names come from that daemon
    local -a kinds
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if ((skip)); then
            skip=0
            [[ "${COMP_WORDS[i - 1]}" == --url ]] && daemon=(--url "$word")
            continue
        fi
        case "$word" in
            --url=*)
                daemon=(--url "${word#--url=}")
                continue
                ;;
            --*=*) continue ;;
            -*)
                [[ " ${_orchestry_valopts[$path]} " == *" $word "* ]] && skip=1
                continue
                ;;
        esac
        if [[ " ${_orchestry_cmds[$path]} " == *" $word "* ]]; then
            path="$path/$word"
            npos=0
        else
            npos=$((npos + 1))
        fi
    done
    if ((skip)); then
        prev="${COMP_WORDS[COMP_CWORD - 1]}"
        _orchestry_complete_kind "${_orchestry_optkind[$path/$prev]}" "$cur" "${COMP_WORDS[0]}" "${daemon[@]}"
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "${_orchestry_opts[$path]}" -- "$cur"))
        return 0
    fi
    if [[ -n "${_orchestry_cmds[$path]}" ]]; then
        COMPREPLY=($(compgen -W "${_orchestry_cmds[$path]}" -- "$cur"))
        return 0
    fi
    kinds=(${_orchestry_pos[$path]})
    if ((npos < ${#kinds[@]})); then
        _orchestry_complete_kind "${kinds[npos]}" "$cur" "${COMP_WORDS[0]}" "${daemon[@]}"
    elif ((${#kinds[@]} > 0)) && [[ "${kinds[${#kinds[@]} - 1]}" == *+ ]]; then
        _orchestry_complete_kind "${kinds[${#kinds[@]} - 1]}" "$cur" "${COMP_WORDS[0]}" "${daemon[@]}"
    fi
    return 0
}

complete -F _orchestry orchestry
"""

ZSH_PRELUDE = """#compdef orchestry
# zsh: the bash completion below runs through zsh's bashcompinit layer.
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u }
autoload -U +X bashcompinit && bashcompinit
"""


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    levels = walk(parser)
    commands, options, value_options, option_kinds, positionals = {}, {}, {}, {}, {}
    for path, level in levels.items():
        # "_" is the top level (bash refuses an empty key); "/" joins, as zsh keeps quotes in keys.
        key = "/".join(("_", *path))
        if level.commands:
            commands[key] = " ".join(level.commands)
        options[key] = " ".join(level.options)
        value_options[key] = " ".join(level.value_options)
        for option, kind in level.value_options.items():
            option_kinds[f"{key}/{option}"] = kind
        positionals[key] = " ".join(level.positionals)
    lines = [
        f"# orchestry {shell} completion, generated from its parser by `orchestry completion {shell}`",
        "declare -gA _orchestry_cmds _orchestry_opts _orchestry_valopts _orchestry_optkind _orchestry_pos",
        *_assignments("_orchestry_cmds", commands),
        *_assignments("_orchestry_opts", options),
        *_assignments("_orchestry_valopts", value_options),
        *_assignments("_orchestry_optkind", option_kinds),
        *_assignments("_orchestry_pos", positionals),
    ]
    body = "\n".join(lines) + "\n" + FUNCTION
    return (ZSH_PRELUDE + body) if shell == "zsh" else body


def completion_command(args: argparse.Namespace) -> int:
    """``orchestry completion bash|zsh`` prints the script; ``apps`` prints app names (for the script)."""
    if args.shell == "apps":
        return _print_app_names(args)
    from orchestry_tui.cli.parser import build_parser

    sys.stdout.write(script(build_parser(), args.shell))
    return 0


APP_NAMES_TIMEOUT = 1.0  # a completion must never hang the shell on an unreachable daemon


def _print_app_names(args: argparse.Namespace) -> int:
    from orchestry_tui.cli.commands import api_token
    from orchestry_tui.client.http import ApiClient, ApiError, DaemonUnreachable, resolve_url

    try:
        url = resolve_url(getattr(args, "url", None)).url
        answer = ApiClient(url, token=api_token(), timeout=APP_NAMES_TIMEOUT).get("/api/v1/apps")
    except (DaemonUnreachable, ApiError, OSError, ValueError):
        return 0
    for app in answer.get("apps", []):
        sys.stdout.write(f"{app['name']}\n")
    return 0
