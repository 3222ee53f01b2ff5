//! `/tmp` on disk, as Lambda's: each sandbox gets an ext4 file system of
//! its own, a sparse image of exactly its size loop-mounted under the state
//! directory and bound at `/tmp`. Its pages are the page cache of a file
//! (reclaimable), not tmpfs pages held against the memory cgroup, and a
//! function that fills it gets `ENOSPC` from the file system, not a kill.
//! The host's disk holds at most the image, whatever the host file system
//! (no project quotas needed: kernels built without `CONFIG_QUOTA` have none).
//!
//! An image is a copy of a template, an empty ext4 file system of that
//! size made once with `mkfs.ext4` (`<state-dir>/lamb-tmp-templates/<bytes>`):
//! the copy holds only the template's data extents (its metadata, a few
//! hundred kilobytes; a clone where the host file system shares blocks), so
//! every image is a file system of its own, sharing no block with another,
//! and making one costs a copy and an in-process loop mount
//! (`crate::loopdev`): no process started, a fraction of what `mkfs.ext4`
//! and `mount -o loop` took (docs/benchmarks.md). Still not free on a cold
//! start of a few milliseconds: the pool makes them
//! ahead, one at a time on a thread of the spawner's own (so that a create
//! never waits behind one being made), for the sizes recently asked for
//! (Lambda's default 512 MB from the start). A sandbox never
//! reuses another's: the image is unmounted and deleted when its sandbox
//! is destroyed (by that same thread while it runs: a few milliseconds no
//! request waits for), and a new one is made, so no file of a former
//! sandbox can be seen. The loop device is set to clear itself (`autoclear`) once its
//! last mount is gone: the host's, and the sandbox's own copy, which goes
//! with the sandbox's mount namespace.
//!
//! Each image lives in `<state-dir>/lamb-tmp-<pid>-<n>/` (`image`, and
//! `mnt` where it is mounted): a daemon killed by `kill -9` leaves them, and
//! the start-up sweep of the same state directory (one per data directory)
//! detaches the mounts, which detaches the loop devices, and removes the
//! directories. Another data directory's daemon never looks there.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Result, SandboxError};
use crate::ext4;
use crate::SANDBOX_PREFIX;

/// Images kept ready per recently asked size.
const READY_PER_SIZE: usize = 2;
/// How many distinct sizes the pool keeps images ready for.
const SIZES_KEPT: usize = 4;
/// The state directory's folder of formatted templates, one file per size.
const TEMPLATES: &str = "lamb-tmp-templates";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the pool and its images share.
#[derive(Debug, Default)]
struct Shared {
    /// Directories of dropped images, for the thread of
    /// [`TmpDisks::keep_ready`] to remove; `None` while no such thread runs
    /// (a drop removes its own then).
    removals: Mutex<Option<Vec<PathBuf>>>,
    /// Counts the calls of [`TmpDisks::idle`] and [`TmpDisks::stop`], which wake the thread.
    events: Mutex<u64>,
    wake: Condvar,
}

impl Shared {
    fn poke(&self) {
        *lock(&self.events) += 1;
        self.wake.notify_all();
    }
}

/// One sandbox's `/tmp`: mounted while this lives, unmounted and deleted when dropped.
#[derive(Debug)]
pub(crate) struct TmpDisk {
    dir: PathBuf,
    shared: Arc<Shared>,
}

impl TmpDisk {
    /// Copies `template` (an empty ext4 file system) to an image of its own
    /// and mounts it.
    fn make(dir: PathBuf, template: &Path, shared: Arc<Shared>) -> Result<TmpDisk> {
        let failed = |source: io::Error| SandboxError::TmpDisk {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(dir.join("mnt")).map_err(failed)?;
        // From here on the drop removes whatever was made.
        let disk = TmpDisk { dir, shared };
        let image = disk.dir.join("image");
        let made = ext4::copy_image(template, &image).and_then(|()| {
            use nix::mount::MsFlags;
            crate::loopdev::mount_ext4(
                &image,
                &disk.mount_point(),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "noinit_itable",
            )
        });
        made.map_err(|source| SandboxError::TmpDisk {
            path: disk.dir.clone(),
            source,
        })?;
        // Everyone's, sticky: as `/tmp` anywhere; the sandbox's user owns nothing else here.
        let root = disk.mount_point();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o1777)).map_err(failed_at(&root))?;
        let _ = fs::remove_dir(root.join("lost+found"));
        Ok(disk)
    }

    /// Where the file system is mounted on the host, for the sandbox to bind.
    pub(crate) fn mount_point(&self) -> PathBuf {
        self.dir.join("mnt")
    }
}

fn failed_at(path: &Path) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::TmpDisk { path, source }
}

impl Drop for TmpDisk {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.dir);
        let mut removals = lock(&self.shared.removals);
        match removals.as_mut() {
            Some(queue) => queue.push(dir),
            None => {
                drop(removals);
                remove(&dir);
            }
        }
    }
}

/// Unmounts and deletes an image's directory.
fn remove(dir: &Path) {
    // Lazily: a sandbox still dying keeps its copy until its namespace goes.
    match nix::mount::umount2(&dir.join("mnt"), nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot unmount a sandbox's /tmp"),
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a sandbox's /tmp image");
        }
    }
}

/// The ready images, by size, and the sizes recently asked for.
#[derive(Debug)]
pub(crate) struct TmpDisks {
    state_dir: PathBuf,
    next: AtomicU64,
    ready: Mutex<HashMap<u64, Vec<TmpDisk>>>,
    /// Most recent first; at most [`SIZES_KEPT`].
    wanted: Mutex<Vec<u64>>,
    shared: Arc<Shared>,
    stopping: AtomicBool,
    /// Held while an image is made ahead, and by a sweep: a sweep must not
    /// remove the directory of an image being mounted.
    making: Mutex<()>,
}

impl TmpDisks {
    pub(crate) fn new(state_dir: PathBuf) -> TmpDisks {
        TmpDisks {
            state_dir,
            next: AtomicU64::new(0),
            ready: Mutex::new(HashMap::new()),
            wanted: Mutex::new(vec![crate::spec::DEFAULT_TMP_SIZE]),
            shared: Arc::default(),
            stopping: AtomicBool::new(false),
            making: Mutex::new(()),
        }
    }

    /// A fresh `/tmp` of `bytes`: a ready one if the pool has it, else made now.
    pub(crate) fn take(&self, bytes: u64) -> Result<TmpDisk> {
        self.want(bytes);
        let ready = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&bytes)
            .and_then(Vec::pop);
        match ready {
            Some(disk) => Ok(disk),
            None => self.make(bytes),
        }
    }

    /// Makes images whenever the pool is short of one, until [`TmpDisks::stop`]:
    /// the body of a thread of its own. It also removes the images dropped
    /// meanwhile, and those left when it ends.
    pub(crate) fn keep_ready(&self) {
        *lock(&self.shared.removals) = Some(Vec::new());
        while !self.stopping.load(Ordering::Acquire) {
            let seen = *lock(&self.shared.events);
            self.remove_dropped();
            match self.prepare_one() {
                Ok(true) => continue,
                Ok(false) => {}
                // A create makes its own then, and says why if it cannot.
                Err(e) => {
                    tracing::warn!(error = %lamb_protocol::errors::Chain(&e), "cannot prepare a sandbox's /tmp ahead of time")
                }
            }
            let events = lock(&self.shared.events);
            // The timeout only bounds how long a busy caller that never calls `idle` waits.
            let _ = self
                .shared
                .wake
                .wait_timeout_while(events, Duration::from_secs(1), |events| {
                    *events == seen && !self.stopping.load(Ordering::Acquire)
                });
        }
        let left = lock(&self.shared.removals).take().unwrap_or_default();
        let _making = lock(&self.making);
        left.iter().for_each(|dir| remove(dir));
    }

    /// Removes the images dropped since the last call (not while a sweep runs).
    fn remove_dropped(&self) {
        let dirs = lock(&self.shared.removals)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let _making = lock(&self.making);
        dirs.iter().for_each(|dir| remove(dir));
    }

    /// Wakes [`TmpDisks::keep_ready`]: no request waits now, so its work
    /// (a copy and a mount per image, an unmount and a delete per used one) holds up no cold start.
    pub(crate) fn idle(&self) {
        self.shared.poke();
    }

    /// Ends [`TmpDisks::keep_ready`] after the image it is making, if any.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.shared.poke();
    }

    /// Makes one image for a wanted size short of ready ones; `false` when none is short.
    pub(crate) fn prepare_one(&self) -> Result<bool> {
        let wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let short = {
            let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            wanted
                .into_iter()
                .find(|size| ready.get(size).map_or(0, Vec::len) < READY_PER_SIZE)
        };
        let Some(size) = short else { return Ok(false) };
        let _making = self.making.lock().unwrap_or_else(|e| e.into_inner());
        let disk = self.make(size)?;
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(size)
            .or_default()
            .push(disk);
        Ok(true)
    }

    /// How many images are ready, of every size.
    pub(crate) fn ready(&self) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Unmounts and deletes the ready images.
    pub(crate) fn clear(&self) {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Clears the ready images and makes none ahead until the guard is
    /// dropped: a sweep removes every image of the state directory meanwhile.
    pub(crate) fn pause(&self) -> std::sync::MutexGuard<'_, ()> {
        let making = self.making.lock().unwrap_or_else(|e| e.into_inner());
        self.clear();
        making
    }

    fn want(&self, bytes: u64) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        wanted.retain(|&size| size != bytes);
        wanted.insert(0, bytes);
        if wanted.len() > SIZES_KEPT {
            let dropped = wanted.pop();
            if let Some(size) = dropped {
                self.ready.lock().unwrap_or_else(|e| e.into_inner()).remove(&size);
            }
        }
    }

    fn make(&self, bytes: u64) -> Result<TmpDisk> {
        let template = self.template(bytes)?;
        let dir = self.unique(&format!("{SANDBOX_PREFIX}tmp"));
        TmpDisk::make(dir, &template, Arc::clone(&self.shared))
    }

    /// A new path in the state directory, `<prefix>-<pid>-<n>`.
    fn unique(&self, prefix: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.state_dir.join(format!("{prefix}-{}-{n}", std::process::id()))
    }

    /// The empty file system of `bytes` every image of that size is copied
    /// from, `<state-dir>/lamb-tmp-templates/<bytes>`: made with `mkfs.ext4`
    /// the first time a size is asked for, and again whenever the file is
    /// not a whole image of that size (deleted, or swept with the state
    /// directory at a start-up). Made under another name and renamed, so
    /// that a copy never reads a template half made.
    fn template(&self, bytes: u64) -> Result<PathBuf> {
        let dir = self.state_dir.join(TEMPLATES);
        let template = dir.join(bytes.to_string());
        if ext4::is_image_of(&template, bytes) {
            return Ok(template);
        }
        let failed = |source: io::Error| SandboxError::TmpDisk {
            path: template.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(failed)?;
        let new = self.unique(&format!("{TEMPLATES}/{bytes}.new"));
        ext4::make_image(&new, bytes, ext4::Journal::No).map_err(failed)?;
        fs::rename(&new, &template).map_err(|e| {
            let _ = fs::remove_file(&new);
            failed(e)
        })?;
        Ok(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const SIZE: u64 = 64 << 20;

    #[test]
    fn a_template_is_made_once_and_again_when_missing_or_of_another_size() {
        let state = tempfile::tempdir().unwrap();
        let disks = TmpDisks::new(state.path().to_path_buf());
        let template = disks.template(SIZE).unwrap();
        assert_eq!(template, state.path().join(TEMPLATES).join(SIZE.to_string()));
        let inode = fs::metadata(&template).unwrap().ino();
        assert_eq!(disks.template(SIZE).unwrap(), template);
        assert_eq!(
            fs::metadata(&template).unwrap().ino(),
            inode,
            "a whole template is kept"
        );

        fs::remove_file(&template).unwrap();
        disks.template(SIZE).unwrap();
        assert!(ext4::is_image_of(&template, SIZE), "a deleted template is made again");

        fs::OpenOptions::new()
            .write(true)
            .open(&template)
            .unwrap()
            .set_len(SIZE / 2)
            .unwrap();
        assert!(!ext4::is_image_of(&template, SIZE));
        disks.template(SIZE).unwrap();
        assert!(
            ext4::is_image_of(&template, SIZE),
            "a template of another size is made again"
        );

        // The right length but no file system in it (zeroed).
        fs::remove_file(&template).unwrap();
        fs::File::create(&template).unwrap().set_len(SIZE).unwrap();
        assert!(!ext4::is_image_of(&template, SIZE));
        disks.template(SIZE).unwrap();
        assert!(
            ext4::is_image_of(&template, SIZE),
            "a template without ext4's magic is made again"
        );
        let left: Vec<_> = fs::read_dir(state.path().join(TEMPLATES)).unwrap().collect();
        assert_eq!(left.len(), 1, "no half-made template is left: {left:?}");
    }

    #[test]
    fn a_copy_holds_the_templates_bytes_in_blocks_of_its_own() {
        let state = tempfile::tempdir().unwrap();
        let disks = TmpDisks::new(state.path().to_path_buf());
        let template = disks.template(SIZE).unwrap();
        let image = state.path().join("image");
        ext4::copy_image(&template, &image).unwrap();
        let (t, i) = (fs::read(&template).unwrap(), fs::read(&image).unwrap());
        assert!(t == i, "the copy has the template's contents");
        let meta = fs::metadata(&image).unwrap();
        assert_eq!(meta.len(), SIZE);
        assert!(meta.blocks() * 512 < SIZE / 8, "holes kept: {} blocks", meta.blocks());
        // A write to the copy (a sandbox's /tmp) leaves the template as it was.
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&image).unwrap();
        f.write_all_at(&[0xAA; 4096], 0).unwrap();
        f.write_all_at(&[0xAA; 4096], SIZE / 2).unwrap();
        assert!(fs::read(&template).unwrap() == t, "the template is unchanged");
        assert!(
            ext4::copy_image(&template, &image).is_err(),
            "an existing image is never overwritten"
        );
    }
}
