# nodejs18.x: Debian's nodejs (18.x in bookworm) and CA certificates.
VARIANT=essential
PACKAGES="nodejs ca-certificates"

check() {
    local root=$1 v
    v=$(chroot "$root" node -e 'console.log(process.version)')
    case $v in
        v18.*) ;;
        *) echo "node version is '$v', want v18.x" >&2; return 1 ;;
    esac
    # lamb's runtime client (rootfs/runtime-clients/nodejs18.x) parses.
    [ -x "$root/var/runtime/bootstrap" ] && chroot "$root" node --check /var/runtime/index.mjs
}
