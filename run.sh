#!/usr/bin/env bash
# Set up (first time only) and start the hearth chat. Arguments go to `hearth`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/setup.sh"
exec "$here/.venv/bin/hearth" "$@"
