//! Shared by the unpack fuzz targets: unpack into a fresh staging directory
//! and check that nothing appeared beside it, whatever the outcome.

use lamb_store::{unpack, UnpackLimits};
use std::path::Path;

pub fn unpack_and_check(bytes: &[u8]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stage = tmp.path().join("stage");
    std::fs::create_dir(&stage).expect("stage");
    let limits = UnpackLimits {
        max_zipped: 1 << 20,
        max_unzipped: 4 << 20,
        max_entries: 1000,
    };
    let _ = unpack(bytes, &stage, &limits);
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("stage")], "wrote outside staging");
    make_writable(&stage);
}

/// The unpacked tree is read-only; make it removable for the tempdir drop.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}
