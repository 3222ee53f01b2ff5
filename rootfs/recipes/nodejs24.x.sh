# nodejs24.x: forky's (Debian testing's) nodejs (24.x) and CA certificates;
# lamb's Node client. No Debian suite ships Node 22's `node` (sid keeps only
# its library, libnode127), so there is no nodejs22.x.
SUITE=forky
IGNORE_VALID_UNTIL=1   # testing: see build.sh
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs

check() {
    check_node "$1" 24
}
