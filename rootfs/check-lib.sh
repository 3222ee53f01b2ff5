# Checks shared by the recipes of one language; check.sh sources this before
# a recipe's check().

# check_python ROOT MAJOR.MINOR: the interpreter is that version, has ssl and
# json, lamb's Python client (rootfs/runtime-clients/python) parses, and
# boto3 imports (with nothing on PYTHONPATH) at its pinned version.
check_python() {
    local root=$1 want=$2 v
    v=$(chroot "$root" python3 -c 'import ssl, json, sys; print("%d.%d" % sys.version_info[:2])')
    [ "$v" = "$want" ] || { echo "python3 is '$v', want $want" >&2; return 1; }
    [ -x "$root/var/runtime/bootstrap" ] &&
        chroot "$root" python3 -c 'import ast; ast.parse(open("/var/runtime/bootstrap.py").read())' || return 1
    local pin
    pin=$(sed -n 's/^boto3==\([^ ]*\).*/\1/p' "$(dirname "${BASH_SOURCE[0]}")/sdk/boto3/requirements.txt")
    v=$(chroot "$root" env -u PYTHONPATH python3 -c 'import boto3, botocore; print(boto3.__version__)')
    [ "$v" = "$pin" ] || { echo "boto3 is '$v', want $pin" >&2; return 1; }
}

# check_node ROOT MAJOR: node is that major version, lamb's Node client
# (rootfs/runtime-clients/nodejs) parses, and the AWS SDK's clients load
# from /var/runtime/node_modules through NODE_PATH, as in a sandbox.
check_node() {
    local root=$1 want=$2 v
    v=$(chroot "$root" node -e 'console.log(process.version)')
    case $v in
        "v$want".*) ;;
        *) echo "node version is '$v', want v$want.x" >&2; return 1 ;;
    esac
    [ -x "$root/var/runtime/bootstrap" ] && chroot "$root" node --check /var/runtime/index.mjs || return 1
    chroot "$root" env NODE_PATH=/var/runtime/node_modules node -e '
        for (const m of ["client-lambda", "client-s3", "client-dynamodb", "lib-dynamodb",
                         "client-sqs", "client-sts", "credential-providers"])
            require("@aws-sdk/" + m);'
}
