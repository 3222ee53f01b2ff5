# python3.13: trixie's python3 (3.13), libstdc++ for native wheels, and CA
# certificates for ssl; lamb's Python client.
SUITE=trixie
PACKAGES="python3 libstdc++6 ca-certificates"
CLIENT=python

check() {
    check_python "$1" 3.13
}
