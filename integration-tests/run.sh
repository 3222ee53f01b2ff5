#!/usr/bin/env bash
# Root-only end-to-end tests: starts the real daemon (target/debug/lamb or
# $LAMB_BIN) and drives it with boto3, the aws CLI and `lamb`. Builds
# nothing; `cargo build` first. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export LAMB_BIN="${LAMB_BIN:-$root/target/debug/lamb}"
if [ ! -x "$LAMB_BIN" ]; then
    echo "run.sh: no lamb binary at $LAMB_BIN (run cargo build first)" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: these tests start the daemon, which runs as root only" >&2
    exit 1
fi
venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
cd "$here"
set +e
"$venv/bin/pytest" -q -rs -p no:cacheprovider "$@"
rc=$?
set -e
# pytest's 5 means no test ran: a failure here, never a pass.
if [ "$rc" = 5 ]; then
    echo "run.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
