# nodejs24.x: forky's (Debian testing's) nodejs (24.x) and CA certificates;
# lamb's Node client.
SUITE=forky
IGNORE_VALID_UNTIL=1   # testing: see build.sh
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs
SDK=aws-sdk-js-v3   # the AWS SDK for JavaScript v3 (rootfs/sdk/aws-sdk-js-v3)

customize() {
    node_sdk_install "$1"
}

check() {
    check_node "$1" 24
}
