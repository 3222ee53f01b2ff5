//! The content-addressed store: sharing, budgets, leftovers and garbage
//! collection together with the registry.

mod common;

use common::{listing, zip, Entry};
use lamb_store::{BundleKind, CodeInfo, CodeStore, NewFunction, Referenced, Registry, SqliteRegistry, UnpackLimits};
use lamb_types::{ArnContext, FunctionSpec};
use std::fs;

fn bundle(content: &[u8]) -> Vec<u8> {
    zip(&[
        Entry::File("bootstrap", b"#!/bin/sh\n", 0o755),
        Entry::File("data", content, 0o644),
    ])
}

#[test]
fn identical_uploads_share_one_read_only_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CodeStore::open(tmp.path()).unwrap();
    let b = bundle(b"same");
    let one = store.put(BundleKind::Function, &b, &UnpackLimits::default()).unwrap();
    let two = store.put(BundleKind::Function, &b, &UnpackLimits::default()).unwrap();
    assert_eq!(one.path, two.path);
    assert_eq!(one.unzipped_size, 14);
    assert_eq!(two.unzipped_size, 14);
    assert_eq!(one.code_size, b.len() as u64);
    assert_eq!(listing(&tmp.path().join("code")).len(), 4); // dir + 2 files + the zip
                                                            // The original zip is kept beside the tree, for Code.Location.
    assert_eq!(fs::read(store.zip_path(BundleKind::Function, &one.digest)).unwrap(), b);
    assert!(one.path.ends_with(one.digest.hex()));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&one.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o555);
    // The same bytes as a layer live in the other half of the store.
    let l = store.put(BundleKind::Layer, &b, &UnpackLimits::default()).unwrap();
    assert!(l.path.starts_with(tmp.path().join("layers")));
}

#[test]
fn a_stored_bundle_still_counts_against_a_smaller_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CodeStore::open(tmp.path()).unwrap();
    let b = bundle(&[1u8; 1000]);
    store.put(BundleKind::Function, &b, &UnpackLimits::default()).unwrap();
    let tight = UnpackLimits {
        max_unzipped: 500,
        ..UnpackLimits::default()
    };
    let e = store.put(BundleKind::Function, &b, &tight).unwrap_err();
    assert_eq!(e.to_lambda().kind, lamb_types::ErrorKind::InvalidParameterValue);
}

#[test]
fn open_removes_interrupted_unpacks() {
    let tmp = tempfile::tempdir().unwrap();
    drop(CodeStore::open(tmp.path()).unwrap());
    let leftover = tmp.path().join("code/.tmp-0123456789abcdef");
    fs::create_dir_all(leftover.join("sub")).unwrap();
    fs::write(leftover.join("sub/f"), b"x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(leftover.join("sub"), fs::Permissions::from_mode(0o555)).unwrap();
    drop(CodeStore::open(tmp.path()).unwrap());
    assert!(!leftover.exists());
}

#[test]
fn gc_removes_only_unreferenced_unpinned_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CodeStore::open(tmp.path()).unwrap();
    let reg = SqliteRegistry::open_in(tmp.path(), ArnContext::default()).unwrap();
    let limits = UnpackLimits::default();

    let used = store.put(BundleKind::Function, &bundle(b"used"), &limits).unwrap();
    reg.create_function(NewFunction {
        name: "f".into(),
        spec: FunctionSpec::default(),
        code: CodeInfo::from(&used),
        publish: false,
    })
    .unwrap();
    let used_path = used.path.clone();
    let used_digest = used.digest;
    drop(used);

    let orphan = store.put(BundleKind::Function, &bundle(b"orphan"), &limits).unwrap();
    let orphan_path = orphan.path.clone();
    let orphan_digest = orphan.digest;
    drop(orphan);

    let pinned = store.put(BundleKind::Layer, &bundle(b"pinned"), &limits).unwrap();

    let report = store.gc(|| reg.referenced_bundles()).unwrap();
    assert_eq!(report.removed, vec![(BundleKind::Function, orphan_digest)]);
    assert!(used_path.is_dir());
    assert!(!orphan_path.exists());
    assert!(
        !store.zip_path(BundleKind::Function, &orphan_digest).exists(),
        "its zip goes too"
    );
    assert!(store.zip_path(BundleKind::Function, &used_digest).is_file());
    assert!(pinned.path.is_dir(), "a pinned bundle was collected");

    let pinned_path = pinned.path.clone();
    drop(pinned);
    store.gc(|| Ok(Referenced::default())).unwrap();
    assert!(!pinned_path.exists());
    assert!(!used_path.exists());
    assert_eq!(listing(&tmp.path().join("code")), Vec::<String>::new());
}
