# ruby3.3: trixie's ruby3.3 and CA certificates; lamb's Ruby client.
SUITE=trixie
PACKAGES="ruby3.3 ca-certificates"
CLIENT=ruby

check() {
    local root=$1 v
    v=$(chroot "$root" ruby -e 'print RUBY_VERSION')
    case $v in
        3.3.*) ;;
        *) echo "ruby version is '$v', want 3.3" >&2; return 1 ;;
    esac
    chroot "$root" ruby -e 'require "json"; require "net/http"; require "openssl"' &&
        [ -x "$root/var/runtime/bootstrap" ] &&
        chroot "$root" ruby -c /var/runtime/lib/lamb_runtime.rb >/dev/null
}
