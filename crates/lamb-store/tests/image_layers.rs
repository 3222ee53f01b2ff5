//! Image layers through the unpacker: OCI whiteouts become overlayfs's own
//! (a 0/0 character device, the opaque attribute), hard links within a
//! layer and absolute symlinks (rooted in the image) are taken, and hostile
//! layers are refused as hostile bundles are. Needs root (mknod, trusted.*
//! attributes), as the daemon has.

mod common;

use common::{targz, TarEntry};
use lamb_store::unpack::unpack_image_layer;
use lamb_store::{UnpackError, UnpackLimits};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

fn limits() -> UnpackLimits {
    UnpackLimits {
        max_zipped: u64::MAX,
        max_unzipped: 1 << 20,
        max_entries: 100,
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn unpack(entries: &[TarEntry<'_>]) -> (tempfile::TempDir, Result<lamb_store::UnpackStats, UnpackError>) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let r = unpack_image_layer(&targz(entries)[..], &dest, &limits());
    (tmp, r)
}

#[test]
fn whiteouts_and_opaque_directories_become_overlayfs_ones() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (tmp, r) = unpack(&[
        TarEntry::Dir("etc/"),
        TarEntry::File("etc/.wh.gone", b"", 0o644),
        TarEntry::Dir("var/cache/"),
        TarEntry::File("var/cache/.wh..wh..opq", b"", 0o644),
        TarEntry::File("var/cache/new", b"n", 0o4755),
    ]);
    r.unwrap();
    let layer = tmp.path().join("layer");
    let gone = std::fs::symlink_metadata(layer.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!layer.join("etc/.wh.gone").exists());
    let mut value = [0u8; 4];
    let path = std::ffi::CString::new(layer.join("var/cache").to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        nix::libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(&value[..n.max(0) as usize], b"y");
    // The setuid bit is dropped as in bundles.
    let mode = std::fs::metadata(layer.join("var/cache/new"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o555);
}

#[test]
fn hard_links_within_the_layer_and_rooted_symlinks_are_taken() {
    let (tmp, r) = unpack(&[
        TarEntry::File("usr/bin/python3.11", b"elf", 0o755),
        TarEntry::HardLink("usr/bin/python3", "usr/bin/python3.11"),
        TarEntry::Symlink("etc/alternatives/py", "/usr/bin/python3"),
        TarEntry::Symlink("bin", "usr/bin"),
    ]);
    r.unwrap();
    let layer = tmp.path().join("layer");
    let a = std::fs::metadata(layer.join("usr/bin/python3.11")).unwrap();
    let b = std::fs::metadata(layer.join("usr/bin/python3")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        std::fs::read_link(layer.join("etc/alternatives/py")).unwrap(),
        std::path::Path::new("/usr/bin/python3")
    );
}

#[test]
fn hostile_layers_are_refused() {
    let cases: Vec<(&str, Vec<TarEntry<'_>>)> = vec![
        ("traversal", vec![TarEntry::File("../evil", b"x", 0o644)]),
        ("absolute", vec![TarEntry::File("/etc/evil", b"x", 0o644)]),
        ("symlink escape", vec![TarEntry::Symlink("up", "../../../../etc")]),
        (
            "write through a symlink",
            vec![TarEntry::Symlink("d", "/etc"), TarEntry::File("d/passwd", b"x", 0o644)],
        ),
        ("device node", vec![TarEntry::Char("dev/kmsg")]),
        ("block device", vec![TarEntry::Block("dev/sda")]),
        ("fifo", vec![TarEntry::Fifo("f")]),
        ("hard link outside", vec![TarEntry::HardLink("h", "../../etc/shadow")]),
        ("hard link to nothing", vec![TarEntry::HardLink("h", "etc/shadow")]),
        ("whiteout escape", vec![TarEntry::File("../.wh.x", b"", 0o644)]),
        ("oversized", vec![TarEntry::File("big", &[0u8; (1 << 20) + 1], 0o644)]),
    ];
    for (name, entries) in cases {
        let (tmp, r) = unpack(&entries);
        assert!(r.is_err(), "{name}: accepted");
        let beside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(beside.len(), 1, "{name}: wrote beside the layer");
    }
}
