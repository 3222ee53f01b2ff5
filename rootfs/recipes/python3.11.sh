# python3.11: Debian's python3 (3.11), libstdc++ for native wheels, and CA
# certificates for ssl.
VARIANT=essential
PACKAGES="python3 libstdc++6 ca-certificates"

check() {
    local root=$1
    [ "$(chroot "$root" python3 -c 'import ssl, json; print(1)')" = 1 ] &&
        chroot "$root" python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' &&
        # lamb's runtime client (rootfs/runtime-clients/python3.11) parses.
        [ -x "$root/var/runtime/bootstrap" ] &&
        chroot "$root" python3 -c 'import ast; ast.parse(open("/var/runtime/bootstrap.py").read())'
}
