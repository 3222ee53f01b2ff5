//! The fingerprint of this crate's and `lamb-protocol`'s sources
//! (`LAMB_INIT_FINGERPRINT`, [`crate::FINGERPRINT`]): `lamb serve` runs the
//! `lamb-init` binary next to it only when that binary was built from the
//! same init code as its own (a `cargo build --bin lamb` relinks `lamb` alone
//! and leaves an older `lamb-init` beside it).

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let roots = [here.join("src"), here.join("../lamb-protocol/src")];
    let mut files = Vec::new();
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
        collect(root, &mut files);
    }
    files.sort();
    let mut hash = Fnv::default();
    for file in &files {
        let rel = file.strip_prefix(here.parent().unwrap_or(&here)).unwrap_or(file);
        hash.write(rel.to_string_lossy().as_bytes());
        hash.write(&fs::read(file).expect("read a source file"));
    }
    println!("cargo:rustc-env=LAMB_INIT_FINGERPRINT={:016x}", hash.0);
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// FNV-1a, 64 bits: enough to tell two builds' sources apart, and no dependency.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that moving bytes between a name and its contents changes the hash.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }
}
