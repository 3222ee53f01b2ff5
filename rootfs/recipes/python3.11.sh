# python3.11: bookworm's python3 (3.11), libstdc++ for native wheels, and CA
# certificates for ssl; lamb's Python client.
PACKAGES="python3 libstdc++6 ca-certificates"
CLIENT=python

check() {
    check_python "$1" 3.11
}
