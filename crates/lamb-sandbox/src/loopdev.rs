//! Mounting an image file through a loop device, in process: what
//! `mount -o loop` does, without starting `mount` (and `losetup`'s
//! scan of `/sys/block`), which cost most of a `/tmp` image's making once
//! the image itself was a copy (docs/sandbox.md, "`/tmp` on disk").
//!
//! A free device from `/dev/loop-control`, bound to the image with
//! `LOOP_CONFIGURE` (kernel 5.8) or, where that is missing,
//! `LOOP_SET_FD` and `LOOP_SET_STATUS64`; both with `LO_FLAGS_AUTOCLEAR`,
//! so the device lets go of the image once nothing holds it: neither the
//! mount (the host's and the sandbox's copies) nor our descriptor, closed
//! once the file system is mounted.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// How many times a free device is asked for when another process takes
/// the one given first (`EBUSY`).
const TRIES: usize = 16;

/// `struct loop_info64` of linux/loop.h.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of linux/loop.h.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn info() -> LoopInfo64 {
    LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        sizelimit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_AUTOCLEAR,
        file_name: [0; 64],
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    }
}

fn ioctl(fd: RawFd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: each caller passes the argument its request documents.
    match unsafe { libc::ioctl(fd, request, arg) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Mounts the ext4 file system in `image` at `target` with `flags` and
/// `data`, through a loop device that detaches itself when unmounted.
pub fn mount_ext4(image: &Path, target: &Path, flags: nix::mount::MsFlags, data: &str) -> io::Result<()> {
    let file = fs::OpenOptions::new().read(true).write(true).open(image)?;
    let control = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let mut last = None;
    for _ in 0..TRIES {
        let (device, path) = free_device(&control)?;
        match attach(&device, &file) {
            Ok(()) => {}
            // Taken by another process between the two calls: ask again.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        }
        let mounted = nix::mount::mount(Some(path.as_str()), target, Some("ext4"), flags, Some(data));
        // Dropping `device` now leaves the mount the device's only holder
        // (autoclear); a failed mount leaves none, which detaches it.
        if let Err(e) = mounted {
            let _ = ioctl(device.as_raw_fd(), LOOP_CLR_FD, 0);
            return Err(io::Error::other(format!("mount {path} at {}: {e}", target.display())));
        }
        return Ok(());
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free loop device")))
}

/// A free loop device, opened, and its path.
fn free_device(control: &fs::File) -> io::Result<(fs::File, String)> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let path = format!("/dev/loop{n}");
    let device = fs::OpenOptions::new().read(true).write(true).open(&path)?;
    Ok((device, path))
}

/// Binds `device` to `file`, autoclear set.
fn attach(device: &fs::File, file: &fs::File) -> io::Result<()> {
    let config = LoopConfig {
        fd: file.as_raw_fd() as u32,
        block_size: 0,
        info: info(),
        reserved: [0; 8],
    };
    let dev = device.as_raw_fd();
    match ioctl(dev, LOOP_CONFIGURE, std::ptr::addr_of!(config) as libc::c_ulong) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOTTY) => {
            // A kernel before LOOP_CONFIGURE: the two-step way.
            ioctl(dev, LOOP_SET_FD, file.as_raw_fd() as libc::c_ulong)?;
            let status = info();
            ioctl(dev, LOOP_SET_STATUS64, std::ptr::addr_of!(status) as libc::c_ulong).inspect_err(|_| {
                let _ = ioctl(dev, LOOP_CLR_FD, 0);
            })
        }
        other => other,
    }
}
