# java21: trixie's headless OpenJDK 21 runtime and CA certificates; lamb's
# Java client, compiled here with the host's javac (--release 17, which the
# 21 JVM runs) so that the tree carries no JDK.
SUITE=trixie
PACKAGES="openjdk-21-jre-headless ca-certificates"
CLIENT=java

customize() {
    local root=$1
    command -v javac >/dev/null || { echo "java21 needs javac on the host (openjdk-17-jdk-headless)" >&2; return 1; }
    mkdir -p "$root/var/runtime/lib"
    javac -nowarn --release 17 -encoding UTF-8 -d "$root/var/runtime/lib" \
        $(find "$root/var/runtime/src" -name '*.java')
    rm -rf "$root/var/runtime/src"
}

check() {
    local root=$1 v
    # With /proc: the JVM finds its libraries from /proc/self/exe.
    v=$(unshare --mount --propagation private /bin/sh -c \
        'mount -t proc proc "$1/proc" && exec chroot "$1" java -XshowSettings:properties -version' sh "$root" 2>&1 |
        sed -n 's/^ *java.specification.version = //p')
    [ "$v" = 21 ] || { echo "java specification version is '$v', want 21" >&2; return 1; }
    # Java's own trust store, made from the CA certificates.
    [ -s "$root/etc/ssl/certs/java/cacerts" ] || { echo "no /etc/ssl/certs/java/cacerts" >&2; return 1; }
    [ -x "$root/var/runtime/bootstrap" ] &&
        [ -f "$root/var/runtime/lib/lamb/runtime/Client.class" ]
}
