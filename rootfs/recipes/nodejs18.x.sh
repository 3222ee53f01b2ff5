# nodejs18.x: bookworm's nodejs (18.x) and CA certificates; lamb's Node client;
# the AWS SDK for JavaScript v3 at its last release for Node 18
# (rootfs/sdk/aws-sdk-js-v3-node18).
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs
SDK=aws-sdk-js-v3-node18

customize() {
    node_sdk_install "$1"
}

check() {
    check_node "$1" 18
}
