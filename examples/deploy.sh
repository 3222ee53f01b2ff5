#!/bin/sh
# Deploys the examples with the lamb CLI (`make run` uses this):
#
#   examples/deploy.sh [EXAMPLE...]     # default: every examples/*/deploy.args
#
# Each example's deploy.args holds its `lamb deploy` options, one a line
# (`--code` is relative to the example's folder); the function is named
# after the folder. hello-provided's bootstrap is built first (build.sh).
# LAMB is the lamb binary (default target/debug/lamb); LAMB_ENDPOINT and the
# other LAMB_* settings of the CLI apply as usual.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lamb=${LAMB:-target/debug/lamb}
case $lamb in
    */*) case $lamb in /*) ;; *) lamb=$root/$lamb ;; esac ;;
esac

if [ $# -eq 0 ]; then
    for f in "$here"/*/deploy.args; do
        set -- "$@" "$(basename "$(dirname "$f")")"
    done
fi

for name in "$@"; do
    dir=$here/$name
    [ -f "$dir/deploy.args" ] || { echo "deploy.sh: no example $name" >&2; exit 1; }
    if [ -x "$dir/build.sh" ]; then
        "$dir/build.sh"
    fi
    runtime= handler= code=
    while read -r flag value; do
        case $flag in
            '' | '#'*) ;;
            --runtime) runtime=$value ;;
            --handler) handler=$value ;;
            --code) code=$value ;;
            *) echo "deploy.sh: $name/deploy.args: unknown option $flag" >&2; exit 1 ;;
        esac
    done < "$dir/deploy.args"
    case $code in /*) ;; *) code=$dir/$code ;; esac
    echo "deploying $name ($runtime, $handler)"
    "$lamb" deploy "$name" --runtime "$runtime" --handler "$handler" --code "$code"
done
