#!/bin/sh
# Runs the runtime-client tests on the host: rootfs/runtime-clients/tests/run.sh [PYTEST ARGS...]
# Needs python3 with pytest ($PYTHON; default the integration venv's python if
# it exists, else python3), node (18 or later) and gcc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/integration-tests/.venv/bin/python" ]; then
        PYTHON=$root/integration-tests/.venv/bin/python
    else
        PYTHON=python3
    fi
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$PYTHON" -m pytest -p no:cacheprovider -q "$here" "$@"
