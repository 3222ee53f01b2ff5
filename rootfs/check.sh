#!/bin/bash
# Check built runtime root filesystems.
#
#   rootfs/check.sh [RUNTIME...]     (as root; all runtimes if none)
#
# For every tree in rootfs/build/<runtime>: the layout every sandbox relies
# on (mount points, /tmp 1777, /etc/hosts, the sbx_user1051 user, no setuid
# or setgid files, everything owned by root, a working /bin/sh), the alias
# symlinks, and then the recipe's own check() (interpreter or C/C++ programs
# run in a chroot). Exits non-zero if anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RECIPES="$HERE/recipes"
OUT="$HERE/build"

failures=0
fail() { printf 'FAIL %s: %s\n' "$RT" "$*" >&2; failures=$((failures + 1)); }
ok() { printf 'ok   %s: %s\n' "$RT" "$*"; }

[ "$(id -u)" = 0 ] || { echo "check.sh: must run as root (chroot)" >&2; exit 1; }

runtimes=("$@")
if [ ${#runtimes[@]} -eq 0 ]; then
    for f in "$RECIPES"/*.sh; do
        f=${f##*/}
        runtimes+=("${f%.sh}")
    done
fi

check_layout() {
    local root=$1 d
    for d in var/task opt tmp proc dev var/runtime; do
        [ -d "$root/$d" ] && [ ! -L "$root/$d" ] || fail "/$d missing"
    done
    [ "$(stat -c %a "$root/tmp")" = 1777 ] || fail "/tmp mode is $(stat -c %a "$root/tmp")"
    grep -Eq '^127\.0\.0\.1[[:space:]]+localhost' "$root/etc/hosts" || fail "/etc/hosts lacks 127.0.0.1 localhost"
    grep -Eq '^::1[[:space:]]+localhost' "$root/etc/hosts" || fail "/etc/hosts lacks ::1 localhost"
    grep -q '^sbx_user1051:x:993:990:' "$root/etc/passwd" || fail "/etc/passwd lacks sbx_user1051 (993:990)"
    grep -q '^sbx_user1051:x:990:' "$root/etc/group" || fail "/etc/group lacks gid 990"
    if [ -s "$root/etc/resolv.conf" ]; then fail "/etc/resolv.conf is not empty"; fi
    local bad
    bad=$(find "$root" -xdev -perm /6000 ! -type l | head -5)
    [ -z "$bad" ] || fail "setuid/setgid files: $bad"
    bad=$(find "$root" -xdev \( ! -uid 0 -o ! -gid 0 \) | head -5)
    [ -z "$bad" ] || fail "not owned by root: $bad"
    [ -z "$(find "$root/dev" -mindepth 1 | head -1)" ] || fail "/dev is not empty"
    [ "$(chroot "$root" /bin/sh -c 'echo sh ok')" = "sh ok" ] || fail "/bin/sh does not run"
    # The sandbox user can run things too (no root-only permissions).
    [ "$(chroot --userspec=993:990 "$root" /bin/sh -c 'id -u')" = 993 ] ||
        fail "cannot run as sbx_user1051"
}

for RT in "${runtimes[@]}"; do
    root="$OUT/$RT"
    if [ ! -f "$RECIPES/$RT.sh" ]; then
        fail "no recipe"
        continue
    fi
    if [ ! -d "$root" ] || [ -L "$root" ]; then
        fail "not built (run rootfs/build.sh $RT)"
        continue
    fi
    before=$failures
    check_layout "$root"
    (
        ALIASES=""
        unset -f check
        # shellcheck source=/dev/null
        . "$HERE/check-lib.sh"
        # shellcheck source=/dev/null
        . "$RECIPES/$RT.sh"
        rc=0
        for a in $ALIASES; do
            if [ "$(readlink "$OUT/$a")" != "$RT" ]; then
                echo "FAIL $RT: alias $a is not a symlink to $RT" >&2
                rc=1
            fi
        done
        if declare -F check >/dev/null; then
            check "$root" || { echo "FAIL $RT: recipe check" >&2; rc=1; }
        fi
        exit $rc
    ) || failures=$((failures + 1))
    [ "$failures" = "$before" ] && ok "$(du -sh "$root" | cut -f1)"
done

[ "$failures" = 0 ]
