# nodejs20.x: trixie's nodejs (20.x) and CA certificates; lamb's Node client.
SUITE=trixie
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs

check() {
    check_node "$1" 20
}
