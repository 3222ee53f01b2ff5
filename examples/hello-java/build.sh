#!/bin/sh
# Builds hello-java's classes with the host's javac (--release 17, which the
# java21 runtime runs) against the Context and RequestHandler interfaces
# lamb's Java runtime provides (the same names as aws-lambda-java-core's),
# into build/ (or the directory given as $1). The deployment bundle is the
# build/ directory: `lamb deploy ... --code examples/hello-java/build`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build}
mkdir -p "$out"
javac -nowarn --release 17 -encoding UTF-8 -implicit:none \
    -sourcepath "$here/../../rootfs/runtime-clients/java/src" -d "$out" \
    "$here/src/example/Hello.java"
