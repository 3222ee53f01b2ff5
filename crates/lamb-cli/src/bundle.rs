//! Turning `--code DIR|ZIP` into bundle bytes: a file is sent as it is, a
//! directory is zipped with its modes (so `bootstrap` stays executable) and
//! its relative symlinks.

use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub fn load(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("read {}", path.display()))?;
    if meta.is_dir() {
        zip_dir(path)
    } else {
        std::fs::read(path).with_context(|| format!("read {}", path.display()))
    }
}

pub fn zip_dir(root: &Path) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    add_dir(&mut w, root, root)?;
    Ok(w.finish().context("finish the zip")?.into_inner())
}

fn add_dir(w: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(mode);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            w.add_symlink(rel, target.to_string_lossy(), opts)?;
        } else if meta.is_dir() {
            w.add_directory(format!("{rel}/"), opts)?;
            add_dir(w, root, &path)?;
        } else if meta.is_file() {
            w.start_file(rel, opts)?;
            w.write_all(&std::fs::read(&path)?)?;
        } else {
            bail!("{} is neither a file, a directory nor a symlink", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn keeps_executable_bits() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("bootstrap");
        std::fs::write(&boot, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&boot, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/data.txt"), "x").unwrap();
        let bytes = zip_dir(dir.path()).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut f = z.by_name("bootstrap").unwrap();
        assert_eq!(f.unix_mode().unwrap() & 0o777, 0o755);
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert!(s.contains("echo hi"));
        drop(f);
        assert!(z.by_name("lib/data.txt").is_ok());
    }
}
