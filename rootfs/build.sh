#!/bin/bash
# Build the runtime root filesystems described by rootfs/recipes/*.sh.
#
#   rootfs/build.sh [--force] [RUNTIME...]     (as root; all runtimes if none)
#
# Each tree lands in rootfs/build/<runtime>/ and is rebuilt only when its
# recipe, this script, its client directory rootfs/runtime-clients/<CLIENT>/
# or its SDK directory rootfs/sdk/<SDK>/ (the pinned AWS SDK it carries)
# changed (the hash of those is kept in rootfs/build/.<runtime>.stamp). A
# build goes to rootfs/build/.<runtime>.tmp first and is renamed into place
# when complete, so the real name never holds a half-built tree. Runtimes
# build in parallel (mostly download and dpkg), each logging to
# rootfs/build/.<runtime>.log.
#
# Environment:
#   LAMB_RUNTIMES        comma-separated runtimes to build when none are named
#                        (default: every recipe; CI builds all)
#   LAMB_ROOTFS_JOBS     how many runtimes build at once (default 4)
#   LAMB_DEBIAN_MIRROR   a mirror URL or a full "deb ..." line to use instead
#                        of the Debian entries of the host's apt sources (the
#                        recipe's SUITE is not substituted into it).
set -euo pipefail

# The suite the host's apt sources are read for; a recipe's SUITE is
# served from the same mirrors under its own name.
HOST_SUITE=bookworm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
RECIPES="$HERE/recipes"
CLIENTS="$HERE/runtime-clients"
SDKS="$HERE/sdk"
OUT="$HERE/build"
MERGED_USR_HOOKS=/usr/share/mmdebstrap/hooks/merged-usr

# The unprivileged user functions run as; uid/gid as on Lambda.
SBX_USER=sbx_user1051
SBX_UID=993
SBX_GID=990

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

# Paths dpkg never unpacks into the trees.
DPKG_OPTS=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/i18n/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/linda/*'
    --dpkgopt='path-exclude=/usr/share/doc-base/*'
    --dpkgopt='path-exclude=/usr/share/bug/*'
    --dpkgopt='path-exclude=/usr/share/menu/*'
)

# Load one recipe into the current (sub)shell.
load_recipe() {
    local rt=$1
    VARIANT=essential PACKAGES="" ALIASES="" SUITE=bookworm CLIENT="" SDK="" IGNORE_VALID_UNTIL=""
    unset -f customize check 2>/dev/null || true
    [ -f "$RECIPES/$rt.sh" ] || die "no recipe $RECIPES/$rt.sh"
    # shellcheck source=/dev/null
    . "$RECIPES/$rt.sh"
}

all_runtimes() {
    local f
    for f in "$RECIPES"/*.sh; do
        [ -e "$f" ] || continue
        f=${f##*/}
        printf '%s\n' "${f%.sh}"
    done
}

# Hash of everything a runtime's tree is made from. The runtime-client dir
# counts with its file names, types, modes and contents.
recipe_hash() {
    local rt=$1
    {
        printf 'recipe\n'; cat "$RECIPES/$rt.sh"
        printf 'build.sh\n'; cat "$SELF"
        local client
        client=$(load_recipe "$rt"; printf '%s' "$CLIENT")
        if [ -n "$client" ] && [ -d "$CLIENTS/$client" ]; then
            printf 'clients %s\n' "$client"
            (cd "$CLIENTS/$client" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort)
            (cd "$CLIENTS/$client" && find . -type f -print0 | LC_ALL=C sort -z |
                xargs -0 -r sha256sum)
        fi
        local sdk
        sdk=$(load_recipe "$rt"; printf '%s' "$SDK")
        if [ -n "$sdk" ]; then
            printf 'sdk %s\n' "$sdk"
            (cd "$SDKS/$sdk" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        fi
    } | sha256sum | cut -d' ' -f1
}

# The bookworm entries of the host's apt sources (one-line and deb822
# formats), as one-line "deb [signed-by=...] URI SUITE COMPONENTS" entries
# with bookworm replaced by the recipe's $SUITE (Debian's mirrors serve
# every suite, with its -updates and -security, under the same URIs).
# Other repositories (third-party suites such as nodesource) are left out.
host_mirrors() {
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v suite="$HOST_SUITE" -v want="$SUITE" '
        function wanted(s) {
            return s == suite || s == suite "-updates" || s == suite "-security"
        }
        function emit(uri, s, comps, signed) {
            if (!wanted(s) || uri == "") return
            s = want substr(s, length(suite) + 1)
            opts = (signed != "") ? "[signed-by=" signed "] " : ""
            line = "deb " opts uri " " s " " comps
            if (!(line in seen)) { seen[line] = 1; print line }
        }
        function flush(   n, i, j, u, su, nu, ns, isdeb) {
            if (!inpara) return
            isdeb = (" " types " ") ~ / deb /
            if (isdeb && tolower(enabled) != "no") {
                nu = split(uris, u, /[ \t]+/)
                ns = split(suites, su, /[ \t]+/)
                for (i = 1; i <= nu; i++)
                    for (j = 1; j <= ns; j++)
                        emit(u[i], su[j], comps, signed)
            }
            inpara = 0; types = uris = suites = comps = signed = enabled = ""
        }
        FILENAME ~ /\.sources$/ {
            if (FNR == 1) flush()
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            if ($0 ~ /^#/) next
            inpara = 1
            key = tolower($1); sub(/:$/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "components") comps = val
            else if (key == "signed-by") signed = val
            else if (key == "enabled") enabled = val
            next
        }
        {
            flush()
            sub(/#.*/, "")
            if ($1 != "deb") next
            signed = ""
            rest = $0; sub(/^[ \t]*deb[ \t]+/, "", rest)
            if (rest ~ /^\[/) {
                opt = rest; sub(/\].*/, "", opt); sub(/^\[/, "", opt)
                sub(/^\[[^]]*\][ \t]*/, "", rest)
                n = split(opt, o, /[ \t]+/)
                for (i = 1; i <= n; i++)
                    if (o[i] ~ /^signed-by=/) { signed = o[i]; sub(/^signed-by=/, "", signed) }
            }
            n = split(rest, w, /[ \t]+/)
            c = ""
            for (i = 3; i <= n; i++) c = c (c == "" ? "" : " ") w[i]
            emit(w[1], w[2], c, signed)
            signed = ""
        }
        END { flush() }
    ' "${files[@]}"
}

mirror_args() {
    if [ -n "${LAMB_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "$LAMB_DEBIAN_MIRROR"
        return
    fi
    local m
    m=$(host_mirrors)
    if [ -n "$m" ]; then
        printf '%s\n' "$m"
    else
        # The host is not a bookworm box (e.g. Ubuntu): Debian's own mirror.
        log "no $HOST_SUITE entry in the host's apt sources; using deb.debian.org"
        printf '%s\n' "http://deb.debian.org/debian" \
            "deb http://deb.debian.org/debian $SUITE-updates main" \
            "deb http://deb.debian.org/debian-security $SUITE-security main"
    fi
}

ensure_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && return
    log "installing mmdebstrap"
    local i
    for i in $(seq 1 60); do
        if DEBIAN_FRONTEND=noninteractive apt-get install -y mmdebstrap; then
            return
        fi
        # dpkg may be locked by another apt run; wait for it.
        log "apt-get failed (dpkg lock?); retrying in 10 s"
        sleep 10
    done
    die "could not install mmdebstrap"
}

# Unmount whatever an interrupted mmdebstrap left mounted under $1, then
# remove it without crossing into other file systems.
remove_tree() {
    local dir=$1 m
    [ -e "$dir" ] || [ -L "$dir" ] || return 0
    if [ -d "$dir" ] && [ ! -L "$dir" ]; then
        dir=$(cd "$dir" && pwd -P)
        # Deepest mount points first.
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' \
                    /proc/self/mounts | sort -r)
    fi
    rm -rf --one-file-system "$dir"
}

# The host's pip (`python3 -m pip`), else a throwaway venv's in DIR
# (python3-venv, which the Makefile's deps install); printed as a command.
host_pip() {
    local dir=$1
    if python3 -m pip --version >/dev/null 2>&1; then
        printf '%s\n' python3
        return
    fi
    python3 -m venv "$dir/venv" >&2 || return 1
    printf '%s\n' "$dir/venv/bin/python3"
}

# python_sdk_install ROOT MAJOR.MINOR: boto3 and botocore as AWS's Python
# runtimes carry them, from the recipe's $SDK directory (rootfs/sdk/boto3:
# every wheel pinned by version and sha256), into the interpreter's
# /usr/local/lib/pythonX.Y/dist-packages. That directory comes after
# PYTHONPATH (/var/task, /opt/python...) on sys.path, so a function's or a
# layer's own boto3 wins, in Lambda's order. Byte-compiled by the tree's own
# interpreter: /var/runtime and /usr are read-only in a sandbox, and an
# uncompiled botocore costs every cold start that imports it.
python_sdk_install() {
    local root=$1 ver=$2 tmp py rc=0
    local site="/usr/local/lib/python$ver/dist-packages"
    tmp=$(mktemp -d)
    py=$(host_pip "$tmp") &&
        "$py" -m pip install --disable-pip-version-check --no-cache-dir --quiet \
            --no-deps --require-hashes --only-binary=:all: --no-compile \
            --python-version "$ver" --implementation cp \
            --target "$root$site" -r "$SDKS/$SDK/requirements.txt" || rc=$?
    rm -rf "$tmp"
    [ "$rc" = 0 ] || return "$rc"
    # pip --target leaves its own bin/ (console scripts for the host's pip).
    rm -rf "$root$site/bin"
    chroot "$root" python3 -m compileall -q -j 0 "$site" >/dev/null
}

# node_sdk_install ROOT: the AWS SDK for JavaScript v3 clients of the
# recipe's $SDK directory (rootfs/sdk/<SDK>: package.json and the
# package-lock.json that pins every package with its integrity hash) into
# ROOT/var/runtime/node_modules, where AWS's Node.js runtimes keep them:
# NODE_PATH names it after the layers' /opt/nodejs paths, and a function's
# own node_modules is found before NODE_PATH. `npm ci` runs on the host
# (the Makefile's deps install npm) without install scripts.
node_sdk_install() {
    local root=$1 tmp rc=0
    tmp=$(mktemp -d)
    cp "$SDKS/$SDK/package.json" "$SDKS/$SDK/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
        --cache "$tmp/.npm" --loglevel=error) || rc=$?
    if [ "$rc" = 0 ]; then
        rm -rf "$root/var/runtime/node_modules"
        mkdir -p "$root/var/runtime"
        mv "$tmp/node_modules" "$root/var/runtime/node_modules"
        cp "$tmp/package-lock.json" "$root/var/runtime/node_modules/.aws-sdk-lock.json"
    fi
    rm -rf "$tmp"
    return "$rc"
}

# Run inside mmdebstrap's customize hook: $1 runtime, $2 the new root.
customize_tree() {
    local rt=$1 root=$2
    load_recipe "$rt"

    # Mount points and scratch.
    mkdir -p "$root/var/task" "$root/opt" "$root/tmp" "$root/proc" \
        "$root/dev" "$root/var/runtime"
    chmod 0755 "$root/var/task" "$root/opt" "$root/var/runtime"
    chmod 1777 "$root/tmp"

    # The managed runtime's client code, when there is one, shared by every
    # version of a language; the recipe's customize may build it further.
    if [ -n "$CLIENT" ] && [ -d "$CLIENTS/$CLIENT" ]; then
        cp -a --no-preserve=ownership "$CLIENTS/$CLIENT/." "$root/var/runtime/"
        # Which runtime this tree is (the shared bootstraps read it).
        printf '%s\n' "$rt" > "$root/var/runtime/runtime-name"
    fi

    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n' > "$root/etc/hosts"
    : > "$root/etc/resolv.conf"
    echo lamb > "$root/etc/hostname"

    # The unprivileged user functions run as.
    grep -q "^$SBX_USER:" "$root/etc/group" ||
        echo "$SBX_USER:x:$SBX_GID:" >> "$root/etc/group"
    grep -q "^$SBX_USER:" "$root/etc/passwd" ||
        echo "$SBX_USER:x:$SBX_UID:$SBX_GID::/tmp:/usr/sbin/nologin" >> "$root/etc/passwd"
    if [ -f "$root/etc/shadow" ] && ! grep -q "^$SBX_USER:" "$root/etc/shadow"; then
        echo "$SBX_USER:!:19000::::::" >> "$root/etc/shadow"
    fi

    if declare -F customize >/dev/null; then
        customize "$root"
    fi
    # Readable (and, where executable, runnable) by the sandbox user.
    chmod -R u+rwX,go+rX,go-w "$root/var/runtime"

    # Package manager state nobody needs at run time.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
        "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/log/* "$root"/var/cache/ldconfig/aux-cache \
        "$root"/usr/share/info/dir
}

# After mmdebstrap has exited (nothing mounted any more): the final shape.
finish_tree() {
    local root=$1
    # /dev is a mount point only; the sandbox mounts its own.
    find "$root/dev" -mindepth 1 -delete
    # No setuid/setgid programs, everything owned by root.
    find "$root" -xdev -perm /6000 ! -type l -exec chmod ug-s {} +
    find "$root" -xdev \( ! -uid 0 -o ! -gid 0 \) -exec chown -h 0:0 {} +
    chmod 1777 "$root/tmp"
}

build_one() {
    local rt=$1 force=$2
    local tree="$OUT/$rt" tmp="$OUT/.$rt.tmp" old="$OUT/.$rt.old"
    local stamp="$OUT/.$rt.stamp"
    local hash
    hash=$(recipe_hash "$rt")

    # Leftovers of an interrupted build (possibly with mounts in them).
    remove_tree "$tmp"
    remove_tree "$old"

    load_recipe "$rt"
    if [ "$force" = 0 ] && [ -d "$tree" ] && [ ! -L "$tree" ] &&
        [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
        log "$rt: up to date"
        link_aliases "$rt"
        return
    fi

    ensure_mmdebstrap
    log "$rt: building ($SUITE $VARIANT: ${PACKAGES:-no extra packages})"

    local mirrors=()
    mapfile -t mirrors < <(mirror_args)
    local hook
    hook="$(printf '%q' "$SELF") --customize $(printf '%q' "$rt") \"\$1\""

    # Merged /usr the way debootstrap does it: directory symlinks plus the
    # usr-is-merged package, instead of apt pulling in usrmerge and perl.
    local hooks=()
    if [ -d "$MERGED_USR_HOOKS" ]; then
        hooks=(--hook-dir="$MERGED_USR_HOOKS")
    else
        hooks=(--include=usr-is-merged)
    fi

    # Debian testing re-signs its Release files weekly with a short
    # Valid-Until; a mirror that lags behind makes them "expired". The
    # signatures are still checked.
    local aptopts=()
    if [ -n "$IGNORE_VALID_UNTIL" ]; then
        aptopts=(--aptopt='Acquire::Check-Valid-Until "false"')
    fi

    # update-alternatives links man pages too (OpenJDK's postinst), and fails
    # where the man directories, excluded above, do not exist.
    local mandirs='mkdir -p "$1/usr/share/man/man1"'

    local start=$SECONDS
    mmdebstrap --mode=root --variant="$VARIANT" --format=directory \
        ${PACKAGES:+--include="$(echo $PACKAGES | tr ' ' ',')"} \
        "${DPKG_OPTS[@]}" "${aptopts[@]}" "${hooks[@]}" \
        --essential-hook="$mandirs" --customize-hook="$hook" \
        "$SUITE" "$tmp" "${mirrors[@]}" < /dev/null
    finish_tree "$tmp"

    # Swap into place: the real name holds the old tree or the new one.
    rm -f "$stamp"
    if [ -e "$tree" ] || [ -L "$tree" ]; then
        mv -T "$tree" "$old"
    fi
    mv -T "$tmp" "$tree"
    echo "$hash" > "$stamp"
    remove_tree "$old"
    link_aliases "$rt"
    log "$rt: built in $((SECONDS - start)) s, $(du -sh "$tree" | cut -f1)"
}

# Other names the same tree is served under, as relative symlinks.
link_aliases() {
    local rt=$1 a
    for a in $ALIASES; do
        if [ -L "$OUT/$a" ] && [ "$(readlink "$OUT/$a")" = "$rt" ]; then
            continue
        fi
        remove_tree "$OUT/$a"
        ln -sfn "$rt" "$OUT/.$a.link"
        mv -T "$OUT/.$a.link" "$OUT/$a"
    done
}

# A runtime name or one of its ALIASES -> the recipe name.
resolve_name() {
    local name=$1 rt
    if [ -f "$RECIPES/$name.sh" ]; then
        printf '%s\n' "$name"
        return
    fi
    for rt in $(all_runtimes); do
        if (load_recipe "$rt"; for a in $ALIASES; do [ "$a" = "$name" ] && exit 0; done; exit 1); then
            printf '%s\n' "$rt"
            return
        fi
    done
    die "unknown runtime '$name' (recipes: $(all_runtimes | paste -sd' '))"
}

main() {
    if [ "${1:-}" = --customize ]; then
        shift
        customize_tree "$@"
        return
    fi
    local force=0
    while [ $# -gt 0 ]; do
        case $1 in
            -f|--force) force=1; shift ;;
            -h|--help) sed -n '2,/^set -e/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; return ;;
            --) shift; break ;;
            -*) die "unknown option $1" ;;
            *) break ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "must run as root"

    local runtimes=("$@")
    if [ ${#runtimes[@]} -eq 0 ] && [ -n "${LAMB_RUNTIMES:-}" ]; then
        IFS=, read -r -a runtimes <<< "$LAMB_RUNTIMES"
    fi
    [ ${#runtimes[@]} -gt 0 ] || mapfile -t runtimes < <(all_runtimes)
    [ ${#runtimes[@]} -gt 0 ] || die "no recipes in $RECIPES"
    local i
    for i in "${!runtimes[@]}"; do
        runtimes[i]=$(resolve_name "${runtimes[i]}")
    done

    mkdir -p "$OUT"
    # One build at a time per checkout.
    exec 9> "$OUT/.lock"
    flock 9

    build_all "$force" "${runtimes[@]}"
}

# Build the runtimes, up to $LAMB_ROOTFS_JOBS at once; each one's output goes
# to rootfs/build/.<runtime>.log (and its tail to stderr if it fails).
build_all() {
    local force=$1
    shift
    local jobs=${LAMB_ROOTFS_JOBS:-4} rt pid failed=() start=$SECONDS
    case $jobs in '' | *[!0-9]* | 0) die "LAMB_ROOTFS_JOBS must be a positive number" ;; esac
    declare -A pids=()
    for rt in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        ( build_one "$rt" "$force" ) > "$OUT/.$rt.log" 2>&1 &
        pids[$rt]=$!
    done
    for rt in "${!pids[@]}"; do
        pid=${pids[$rt]}
        if wait "$pid"; then
            grep '^rootfs: ' "$OUT/.$rt.log" >&2 || true
        else
            tail -n 30 "$OUT/.$rt.log" >&2
            failed+=("$rt")
        fi
    done
    [ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (logs in $OUT/.<runtime>.log)"
    log "all done in $((SECONDS - start)) s"
}

main "$@"
