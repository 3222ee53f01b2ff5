# nodejs24.x: forky's (Debian testing's) nodejs (24.x) and CA certificates;
# lamb's Node client.
SUITE=forky
IGNORE_VALID_UNTIL=1   # testing: see build.sh
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs

check() {
    check_node "$1" 24
}
