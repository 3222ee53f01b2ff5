# python3.14: forky's (Debian testing's) python3.14, libstdc++ for native
# wheels, and CA certificates for ssl; lamb's Python client. python3.14 is
# named rather than python3 so that the tree stays 3.14 when forky's default
# Python moves on (python3 -> python3.14 is made here as it would be).
SUITE=forky
IGNORE_VALID_UNTIL=1   # testing: see build.sh
PACKAGES="python3.14 libstdc++6 ca-certificates"
CLIENT=python
SDK=boto3   # rootfs/sdk/boto3

customize() {
    local root=$1
    [ -e "$root/usr/bin/python3" ] || ln -s python3.14 "$root/usr/bin/python3"
    python_sdk_install "$root" 3.14
}

check() {
    check_python "$1" 3.14
}
