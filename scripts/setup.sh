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
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
        # A native build on x86-64 CPUs with AMX segfaults in ggml_backend_amx_mul_mat on the first
        # decode (llama.cpp's AMX path): build for AVX2 instead. ARM (a Pi) keeps the native build.
        case "$(uname -m)" in
            x86_64|amd64) export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" ;;
        esac
        echo "hearth: building llama-cpp-python (about 4 minutes on 2 cores; pip caches it after)" >&2
        .venv/bin/python -m pip install --quiet "llama-cpp-python==0.3.36"
    fi
    .venv/bin/python -m pip install --quiet -e ".${extras}"
    echo "$want" > "$stamp"
fi

# A first run with no model gets the starter model (SmolLM2-135M-Instruct, ~94 MiB).
.venv/bin/python -m engine.models.starter >/dev/null
