#!/usr/bin/env bash
# Shell completion for the `orchestry` command of a virtualenv (bash and zsh), loaded by its activate.
#
#   scripts/install_completion.sh [VENV]   default .venv; run again after adding subcommands
#
# Writes VENV/share/orchestry/orchestry.{bash,zsh} (generated from the CLI's parser by
# `orchestry completion bash|zsh`) and, once, appends to VENV/bin/activate the lines that source the
# one matching the shell. Without the venv: eval "$(orchestry completion bash)" in ~/.bashrc, or
# `orchestry completion zsh > "${fpath[1]}/_orchestry"` for zsh.
set -euo pipefail

venv=${1:-.venv}
share="$venv/share/orchestry"
marker="# orchestry shell completion (scripts/install_completion.sh)"

[[ -x $venv/bin/orchestry && -f $venv/bin/activate ]] || {
    echo "install_completion: $venv is not a virtualenv with orchestry installed" >&2
    exit 1
}
mkdir -p "$share"
"$venv/bin/orchestry" completion bash >"$share/orchestry.bash.tmp"
"$venv/bin/orchestry" completion zsh >"$share/orchestry.zsh.tmp"
mv "$share/orchestry.bash.tmp" "$share/orchestry.bash"
mv "$share/orchestry.zsh.tmp" "$share/orchestry.zsh"

if ! grep -qF "$marker" "$venv/bin/activate"; then
    cat >>"$venv/bin/activate" <<'ACTIVATE'

# orchestry shell completion (scripts/install_completion.sh)
if [ -n "${BASH_VERSION:-}" ] && [ -r "$VIRTUAL_ENV/share/orchestry/orchestry.bash" ]; then
    . "$VIRTUAL_ENV/share/orchestry/orchestry.bash"
elif [ -n "${ZSH_VERSION:-}" ] && [ -r "$VIRTUAL_ENV/share/orchestry/orchestry.zsh" ]; then
    . "$VIRTUAL_ENV/share/orchestry/orchestry.zsh"
fi
ACTIVATE
fi
