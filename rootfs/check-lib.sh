# Checks shared by the recipes of one language; check.sh sources this before
# a recipe's check().

# check_python ROOT MAJOR.MINOR: the interpreter is that version, has ssl and
# json, and lamb's Python client (rootfs/runtime-clients/python) parses.
check_python() {
    local root=$1 want=$2 v
    v=$(chroot "$root" python3 -c 'import ssl, json, sys; print("%d.%d" % sys.version_info[:2])')
    [ "$v" = "$want" ] || { echo "python3 is '$v', want $want" >&2; return 1; }
    [ -x "$root/var/runtime/bootstrap" ] &&
        chroot "$root" python3 -c 'import ast; ast.parse(open("/var/runtime/bootstrap.py").read())'
}

# check_node ROOT MAJOR: node is that major version and lamb's Node client
# (rootfs/runtime-clients/nodejs) parses.
check_node() {
    local root=$1 want=$2 v
    v=$(chroot "$root" node -e 'console.log(process.version)')
    case $v in
        "v$want".*) ;;
        *) echo "node version is '$v', want v$want.x" >&2; return 1 ;;
    esac
    [ -x "$root/var/runtime/bootstrap" ] && chroot "$root" node --check /var/runtime/index.mjs
}
