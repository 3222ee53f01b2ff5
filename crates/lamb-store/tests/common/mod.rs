//! What the store's tests share: builders for test bundles (zips and tar.gz
//! archives made entry by entry, including the malformed and hostile ones no
//! honest tool would write) and, in [`registry`], a registry to test against.

#![allow(dead_code)]

/// The throwaway PostgreSQL, shared with the other crates' tests.
pub use lamb_test_postgres as postgres;
pub mod registry;

use std::io::{Cursor, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;

pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

pub fn zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for e in entries {
        match e {
            Entry::File(name, data, mode) => {
                let opts = SimpleFileOptions::default().unix_permissions(*mode);
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Entry::Dir(name) => w.add_directory(*name, SimpleFileOptions::default()).unwrap(),
            Entry::Symlink(name, target) => w.add_symlink(*name, *target, SimpleFileOptions::default()).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// Rewrites the Unix mode (file type included) of `name` in a zip's central
/// directory, where ZipWriter would have masked it to the permission bits.
pub fn set_zip_mode(bytes: &mut [u8], name: &str, mode: u32) {
    let mut at = 0;
    while at + 46 <= bytes.len() {
        if bytes[at..at + 4] == [0x50, 0x4b, 0x01, 0x02] {
            let n = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
            if &bytes[at + 46..at + 46 + n] == name.as_bytes() {
                bytes[at + 5] = 3; // made by Unix
                bytes[at + 38..at + 42].copy_from_slice(&(mode << 16).to_le_bytes());
                return;
            }
        }
        at += 1;
    }
    panic!("{name} not in zip");
}

/// Replaces every occurrence of `from` with `to` (same length): how a zip
/// with two entries of one name is made, since ZipWriter refuses that.
pub fn rename_in_place(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut at = 0;
    while at + from.len() <= bytes.len() {
        if &bytes[at..at + from.len()] == from {
            bytes[at..at + from.len()].copy_from_slice(to);
        }
        at += 1;
    }
}

pub enum TarEntry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Char(&'a str),
    Block(&'a str),
    Fifo(&'a str),
}

/// A tar.gz with names written raw into the headers, so `..` and absolute
/// paths get through (tar::Builder would refuse them).
pub fn targz(entries: &[TarEntry<'_>]) -> Vec<u8> {
    use tar::{EntryType, Header};
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = Header::new_gnu();
        let (name, kind, data, mode, link): (&str, EntryType, &[u8], u32, &str) = match e {
            TarEntry::File(n, d, m) => (n, EntryType::Regular, d, *m, ""),
            TarEntry::Dir(n) => (n, EntryType::Directory, b"", 0o755, ""),
            TarEntry::Symlink(n, t) => (n, EntryType::Symlink, b"", 0o777, t),
            TarEntry::HardLink(n, t) => (n, EntryType::Link, b"", 0o644, t),
            TarEntry::Char(n) => (n, EntryType::Char, b"", 0o644, ""),
            TarEntry::Block(n) => (n, EntryType::Block, b"", 0o644, ""),
            TarEntry::Fifo(n) => (n, EntryType::Fifo, b"", 0o644, ""),
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Every path under `dir`, relative, sorted; symlinks not followed.
pub fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
