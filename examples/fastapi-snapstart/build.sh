#!/usr/bin/env bash
# Builds the FastAPI + Mangum example into build/ (git-ignored): app.py and
# the pinned packages of requirements.txt, as CPython 3.13 wheels from PyPI
# for x86_64 Linux (the python3.13 runtime), installed without their
# dependencies' resolution (the list is whole). Skipped when build/ holds
# this requirements.txt already.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if [ -f build/requirements.txt ] && cmp -s build/requirements.txt requirements.txt && [ -f build/app.py ] &&
    cmp -s build/app.py app.py; then
    exit 0
fi
rm -rf build.tmp
# A venv of its own: Debian's python3 has no pip of its own (python3-venv
# brings one into each venv) and refuses installs outside a venv.
[ -x build.venv/bin/pip ] || python3 -m venv build.venv
build.venv/bin/pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile --no-deps --only-binary=:all: \
    --python-version 3.13 --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --target build.tmp -r requirements.txt
rm -rf build.tmp/bin
cp app.py requirements.txt build.tmp/
rm -rf build
mv build.tmp build
