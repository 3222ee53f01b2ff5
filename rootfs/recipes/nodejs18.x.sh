# nodejs18.x: bookworm's nodejs (18.x) and CA certificates; lamb's Node client.
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs

check() {
    check_node "$1" 18
}
