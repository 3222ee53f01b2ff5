# nodejs20.x: trixie's nodejs (20.x) and CA certificates; lamb's Node client.
SUITE=trixie
PACKAGES="nodejs ca-certificates"
CLIENT=nodejs
SDK=aws-sdk-js-v3   # the AWS SDK for JavaScript v3 (rootfs/sdk/aws-sdk-js-v3)

customize() {
    node_sdk_install "$1"
}

check() {
    check_node "$1" 20
}
