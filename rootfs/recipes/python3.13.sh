# python3.13: trixie's python3 (3.13), libstdc++ for native wheels, and CA
# certificates for ssl; lamb's Python client; boto3 (rootfs/sdk/boto3).
SUITE=trixie
PACKAGES="python3 libstdc++6 ca-certificates"
CLIENT=python
SDK=boto3

customize() {
    python_sdk_install "$1" 3.13
}

check() {
    check_python "$1" 3.13
}
