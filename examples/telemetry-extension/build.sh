#!/usr/bin/env bash
# Builds the extension into build/extensions/telemetry-extension (git-ignored),
# the layout of its layer; quick when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
cargo build --release --quiet
mkdir -p build/extensions
install -m 0755 target/release/telemetry-extension build/extensions/telemetry-extension
