#!/usr/bin/env bash
# Set up hearth in ./.venv: every Python dependency, llama-cpp-python built with flags that work on
# this CPU, and (when hearth has no model yet) the starter model. Idempotent and quick when done.
#   scripts/setup.sh          for chatting
#   scripts/setup.sh --dev    also the test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    echo "hearth: creating .venv" >&2
    "$python" -m venv .venv || {
        echo "hearth: could not create a virtual environment; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi

stamp=".venv/.hearth-setup${extras}"
want="$(cat pyproject.toml scripts/setup.sh scripts/llama_build.py engine/cpu.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # llama-cpp-python built for this CPU's own features: no AVX2 -> a build without it (the default
    # one dies with SIGILL there), AVX-512/VNNI -> used, AMX -> left out (it crashes); ARM -> native.
    # Prints the choice when it builds; `python3 scripts/llama_build.py show` says it any time.
    .venv/bin/python scripts/llama_build.py install
    .venv/bin/python -m pip install --quiet -e ".${extras}"
    echo "$want" > "$stamp"
fi

# A first run with no model gets the starter model (SmolLM2-135M-Instruct, ~94 MiB).
.venv/bin/python -m engine.models.starter >/dev/null
