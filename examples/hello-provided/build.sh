#!/bin/sh
# Builds hello-provided's bootstrap: a static binary from bootstrap.c with the
# host's gcc, into build/bootstrap (or the path given as $1). The deployment
# bundle is the build/ directory: `lamb deploy ... --code examples/hello-provided/build`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build/bootstrap}
mkdir -p "$(dirname "$out")"
${CC:-gcc} -static -O2 -Wall -Wextra -o "$out" "$here/bootstrap.c"
chmod 0755 "$out"
