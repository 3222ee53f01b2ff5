# provided.al2023: the OS-only runtime. Enough for a dynamically linked
# `bootstrap` built on a Debian or Ubuntu box: glibc (essential), libgcc,
# libstdc++ and CA certificates. Also served as provided.al2 and provided.
VARIANT=essential
PACKAGES="libgcc-s1 libstdc++6 ca-certificates"
ALIASES="provided.al2 provided"

# check ROOT: a C and a C++ program built with the host compilers run in it.
check() {
    local root=$1 dir
    dir=$(mktemp -d "$root/tmp/check.XXXXXX")
    printf '#include <stdio.h>\nint main(void){puts("c ok");return 0;}\n' > "$dir/t.c"
    printf '#include <iostream>\n#include <string>\nint main(){std::string s("c++ ok");std::cout<<s<<std::endl;try{throw 1;}catch(int){}return 0;}\n' > "$dir/t.cc"
    gcc -O2 -o "$dir/c" "$dir/t.c"
    g++ -O2 -o "$dir/cc" "$dir/t.cc"
    local rel=${dir#"$root"} rc=0
    [ "$(chroot "$root" "$rel/c")" = "c ok" ] || rc=1
    [ "$(chroot "$root" "$rel/cc")" = "c++ ok" ] || rc=1
    chroot "$root" /bin/sh -c 'test -s /etc/ssl/certs/ca-certificates.crt' || rc=1
    rm -rf "$dir"
    return $rc
}
