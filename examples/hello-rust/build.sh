#!/usr/bin/env bash
# Builds the bootstrap into build/bootstrap (git-ignored); quick when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
cargo build --release --quiet
mkdir -p build
install -m 0755 target/release/bootstrap build/bootstrap
