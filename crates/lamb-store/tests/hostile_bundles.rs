//! Hostile bundles: each must be refused whole, through the unpacker and
//! through the store, and leave no file outside the staging area (and, in
//! the store, nothing at all).

mod common;

use common::{listing, rename_in_place, set_zip_mode, targz, zip, Entry, TarEntry};
use lamb_store::{unpack, BundleKind, CodeStore, UnpackError, UnpackLimits};
use lamb_types::ErrorKind;
use std::fs;
use std::path::Path;

fn small_limits() -> UnpackLimits {
    UnpackLimits {
        max_zipped: 1 << 20,
        max_unzipped: 1 << 20,
        max_entries: 100,
    }
}

/// Unpacks into `<tmp>/stage` and checks that nothing appeared beside it;
/// then puts the bundle into a store and checks the store stayed empty.
fn refuse(bytes: &[u8], limits: &UnpackLimits) -> UnpackError {
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    fs::create_dir(&stage).unwrap();
    let err = unpack(bytes, &stage, limits).expect_err("hostile bundle accepted");
    let outside: Vec<String> = listing(tmp.path())
        .into_iter()
        .filter(|p| p != "stage" && !p.starts_with("stage/"))
        .collect();
    assert!(outside.is_empty(), "wrote outside staging: {outside:?}");

    let data = tmp.path().join("data");
    let store = CodeStore::open(&data).unwrap();
    for kind in [BundleKind::Function, BundleKind::Layer] {
        let e = store.put(kind, bytes, limits).expect_err("store accepted");
        assert_ne!(e.to_lambda().kind, ErrorKind::Service, "{e}");
    }
    assert_eq!(
        listing(&data),
        vec!["code", "image-layers", "layers"],
        "store not left as it was"
    );
    err
}

fn refuse_default(bytes: &[u8]) -> UnpackError {
    refuse(bytes, &small_limits())
}

#[test]
fn zip_slip() {
    let b = zip(&[Entry::File("ok", b"x", 0o644), Entry::File("../evil", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::ParentDir { .. }));
    let b = zip(&[Entry::File("a/../../evil", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::ParentDir { .. }));
    let b = targz(&[TarEntry::File("../../evil", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::ParentDir { .. }));
}

#[test]
fn absolute_paths() {
    let b = zip(&[Entry::File("/tmp/evil", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::AbsolutePath { .. }));
    let b = targz(&[TarEntry::File("/tmp/evil", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::AbsolutePath { .. }));
}

#[test]
fn symlink_escapes() {
    for target in ["../..", "/etc", "../outside", "a/../../x"] {
        let b = zip(&[Entry::Symlink("link", target)]);
        assert!(
            matches!(refuse_default(&b), UnpackError::SymlinkEscape { .. }),
            "{target}"
        );
        let b = targz(&[TarEntry::Symlink("link", target)]);
        assert!(
            matches!(refuse_default(&b), UnpackError::SymlinkEscape { .. }),
            "{target}"
        );
    }
    // Each link stays inside; together they climb out.
    let b = zip(&[Entry::Symlink("d/up", ".."), Entry::Symlink("out", "d/up/..")]);
    assert!(matches!(refuse_default(&b), UnpackError::SymlinkEscape { .. }));
}

#[test]
fn writes_through_a_symlink() {
    let b = zip(&[Entry::Symlink("link", "."), Entry::File("link/x", b"x", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::ThroughSymlink { .. }));
    let b = targz(&[
        TarEntry::Symlink("link", "sub"),
        TarEntry::Dir("sub"),
        TarEntry::File("link/x", b"x", 0o644),
    ]);
    assert!(matches!(refuse_default(&b), UnpackError::ThroughSymlink { .. }));
}

#[test]
fn hard_links_and_devices() {
    let b = targz(&[TarEntry::File("a", b"x", 0o644), TarEntry::HardLink("b", "a")]);
    assert!(matches!(refuse_default(&b), UnpackError::HardLink { .. }));
    for e in [TarEntry::Char("c"), TarEntry::Block("b"), TarEntry::Fifo("f")] {
        let b = targz(&[e]);
        assert!(matches!(refuse_default(&b), UnpackError::SpecialFile { .. }));
    }
    for mode in [0o020_644, 0o060_644, 0o010_644, 0o140_644] {
        let mut b = zip(&[Entry::File("dev", b"", 0o644)]);
        set_zip_mode(&mut b, "dev", mode);
        assert!(matches!(refuse_default(&b), UnpackError::SpecialFile { .. }));
    }
}

#[test]
fn duplicate_entries() {
    let mut b = zip(&[Entry::File("dup1", b"one", 0o644), Entry::File("dup2", b"two", 0o644)]);
    rename_in_place(&mut b, "dup2", "dup1");
    assert!(matches!(refuse_default(&b), UnpackError::Duplicate { .. }));
    let b = targz(&[TarEntry::File("a", b"1", 0o644), TarEntry::File("a", b"2", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::Duplicate { .. }));
    // A file where a directory was, and a file under a file.
    let b = targz(&[TarEntry::File("d/x", b"1", 0o644), TarEntry::File("d", b"2", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::Duplicate { .. }));
    let b = targz(&[TarEntry::File("f", b"1", 0o644), TarEntry::File("f/x", b"2", 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::Duplicate { .. }));
    let b = zip(&[Entry::File("s", b"1", 0o644), Entry::Symlink("s2", "s")]);
    let mut b2 = b.clone();
    rename_in_place(&mut b2, "s2", "s\0");
    assert!(refuse(&b2, &small_limits()).to_string().contains('s'));
}

/// "Unzipped size must be smaller than" the limit, as AWS answers a bundle
/// of exactly 262144000 bytes (the recorded test_oversized_unzipped_lambda).
#[test]
fn a_bundle_as_large_as_the_limit_is_refused() {
    let limits = small_limits();
    let at = vec![b'#'; limits.max_unzipped as usize];
    let e = refuse(&zip(&[Entry::File("handler.py", &at, 0o644)]), &limits);
    assert!(matches!(e, UnpackError::UnzippedTooLarge { .. }), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let under = zip(&[Entry::File("handler.py", &at[1..], 0o644)]);
    fs::create_dir(tmp.path().join("stage")).unwrap();
    unpack(&under, &tmp.path().join("stage"), &limits).unwrap();
}

#[test]
fn decompression_bombs() {
    // 8 MB of zeros compress to a few KB; the budget is 1 MB.
    let zeros = vec![0u8; 8 << 20];
    let b = zip(&[Entry::File("bomb", &zeros, 0o644)]);
    assert!(b.len() < 100_000);
    assert!(matches!(refuse_default(&b), UnpackError::UnzippedTooLarge { .. }));
    let b = targz(&[TarEntry::File("bomb", &zeros, 0o644)]);
    assert!(matches!(refuse_default(&b), UnpackError::UnzippedTooLarge { .. }));
    // Many small files adding up past the budget.
    let chunk = vec![7u8; 300 << 10];
    let names: Vec<String> = (0..4).map(|i| format!("f{i}")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| Entry::File(n, &chunk, 0o644)).collect();
    assert!(matches!(
        refuse_default(&zip(&entries)),
        UnpackError::UnzippedTooLarge { .. }
    ));
    let e = refuse_default(&zip(&entries));
    assert_eq!(e.to_lambda().kind, ErrorKind::InvalidParameterValue);
}

#[test]
fn too_many_entries_and_too_large() {
    let names: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| Entry::File(n, b"", 0o644)).collect();
    assert!(matches!(
        refuse_default(&zip(&entries)),
        UnpackError::TooManyEntries { .. }
    ));
    let b = zip(&[Entry::File("a", b"x", 0o644)]);
    let tight = UnpackLimits {
        max_zipped: b.len() as u64 - 1,
        ..small_limits()
    };
    let e = refuse(&b, &tight);
    assert!(matches!(e, UnpackError::ZippedTooLarge { .. }));
    assert_eq!(e.to_lambda().kind, ErrorKind::RequestEntityTooLarge);
}

#[test]
fn corrupt_archives() {
    let good = zip(&[Entry::File("a", &[1u8; 5000], 0o644)]);
    for bad in [
        b"PK\x03\x04 not really a zip".to_vec(),
        good[..good.len() / 2].to_vec(),
        b"\x1f\x8b\x08 not gzip".to_vec(),
        b"plain text".to_vec(),
        Vec::new(),
    ] {
        let e = refuse_default(&bad);
        assert!(
            matches!(e, UnpackError::Corrupt { .. } | UnpackError::UnknownFormat),
            "{e}"
        );
        assert_eq!(e.to_lambda().kind, ErrorKind::InvalidParameterValue);
    }
    // Flip bytes of the compressed data: the CRC check catches it.
    let mut flipped = good.clone();
    for b in &mut flipped[40..60] {
        *b ^= 0xff;
    }
    refuse_default(&flipped);
}

#[test]
fn honest_bundle_keeps_exec_bits_and_drops_setuid() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    fs::create_dir(&stage).unwrap();
    let mut b = zip(&[
        Entry::File("bootstrap", b"#!/bin/sh\n", 0o755),
        Entry::File("lib/data.txt", b"hello", 0o644),
        Entry::File("suid", b"x", 0o755),
        Entry::Dir("empty/"),
        Entry::Symlink("lib/self", "../bootstrap"),
    ]);
    set_zip_mode(&mut b, "suid", 0o106_755);
    let stats = unpack(&b, &stage, &small_limits()).unwrap();
    assert_eq!(stats.unzipped_bytes, 10 + 5 + 1);
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        fs::symlink_metadata(stage.join(p)).unwrap().permissions().mode() & 0o7777
    };
    assert_eq!(mode("bootstrap"), 0o555);
    assert_eq!(mode("lib/data.txt"), 0o444);
    assert_eq!(mode("suid"), 0o555);
    assert_eq!(mode("empty"), 0o555);
    assert_eq!(mode("lib"), 0o555);
    assert_eq!(mode(""), 0o555);
    assert_eq!(
        fs::read_link(stage.join("lib/self")).unwrap(),
        Path::new("../bootstrap")
    );
}

#[test]
fn honest_targz_with_dot_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    fs::create_dir(&stage).unwrap();
    let b = targz(&[
        TarEntry::Dir("./"),
        TarEntry::Dir("./bin/"),
        TarEntry::File("./bin/tool", b"#!", 0o4755),
        TarEntry::Symlink("./bootstrap", "bin/tool"),
    ]);
    unpack(&b, &stage, &small_limits()).unwrap();
    assert_eq!(fs::read(stage.join("bootstrap")).unwrap(), b"#!");
    use std::os::unix::fs::PermissionsExt;
    let m = fs::metadata(stage.join("bin/tool")).unwrap().permissions().mode();
    assert_eq!(m & 0o7777, 0o555);
}
