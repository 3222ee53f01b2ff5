//! `lamb init` inside a container image. An image brings its own C library,
//! or none (`FROM scratch` with a static binary), and it may be older than the
//! one lamb was built against; so in an image init runs on the daemon's own
//! dynamic loader and libraries: copied once per daemon from what the daemon
//! itself has mapped into `<data-dir>/image-init/`, mounted read-only at
//! [`LIB_IN_SANDBOX`], and named on init's command line (`ld.so
//! --library-path`). The function's processes never see them: init starts
//! the image's own entry point with the image's own loader.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the loader and libraries appear inside an image's sandbox.
pub const LIB_IN_SANDBOX: &str = "/.lamb-lib";

/// The directory of loader and libraries (made at the first call of this
/// process), or why there is none.
pub fn lib_dir(data_dir: &Path) -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| build(&data_dir.join("image-init")).map_err(|e| format!("prepare lamb init for images: {e}")))
        .clone()
}

/// The command-line prefix that runs `/.lamb/lamb` on those libraries.
pub fn loader_argv() -> [String; 3] {
    [
        format!("{LIB_IN_SANDBOX}/ld.so"),
        "--library-path".to_owned(),
        LIB_IN_SANDBOX.to_owned(),
    ]
}

/// The shared objects this process has mapped: its loader and libraries.
fn mapped_objects(maps: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(PathBuf::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn build(dir: &Path) -> std::io::Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    let maps = fs::read_to_string("/proc/self/maps")?;
    let mut loader = false;
    for object in mapped_objects(&maps) {
        let Some(name) = object.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let target = dir.join(name);
        fs::copy(&object, &target)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o555))?;
        if name.starts_with("ld-linux") || name.starts_with("ld-musl") {
            fs::copy(&object, dir.join("ld.so"))?;
            fs::set_permissions(dir.join("ld.so"), fs::Permissions::from_mode(0o555))?;
            loader = true;
        }
    }
    if !loader {
        return Err(std::io::Error::other("no dynamic loader among this process's mappings"));
    }
    Ok(dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_objects_are_the_files_of_shared_objects() {
        let maps = "7f00-7f01 r--p 00000000 fe:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f01-7f02 r-xp 00001000 fe:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f03-7f04 r--p 00000000 fe:01 2 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n\
                    7f05-7f06 rw-p 00000000 00:00 0 [heap]\n\
                    5600-5601 r-xp 00000000 fe:01 3 /usr/bin/lamb\n";
        assert_eq!(
            mapped_objects(maps),
            [
                PathBuf::from("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6")
            ]
        );
    }
}
