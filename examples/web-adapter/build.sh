#!/usr/bin/env bash
# Builds the AWS Lambda Web Adapter (`lambda_web_adapter` from crates.io,
# unmodified) into build/extensions/lambda-adapter (git-ignored), the layout
# of its layer. Building it takes minutes on a small machine, so it is built
# once per version: build/VERSION says which one is there.
set -euo pipefail
version=0.9.1
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if [ -x build/extensions/lambda-adapter ] && [ "$(cat build/VERSION 2>/dev/null)" = "$version" ]; then
    exit 0
fi
cargo install --quiet --locked --root build/cargo lambda_web_adapter --version "$version"
mkdir -p build/extensions
install -m 0755 build/cargo/bin/lambda-adapter build/extensions/lambda-adapter
echo "$version" > build/VERSION
