//! The default POSIX ACL of a served directory, written as the kernel's
//! `system.posix_acl_default` extended attribute (no libacl needed).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const ACL_XATTR_VERSION: u32 = 2;
const ACL_USER_OBJ: u16 = 0x01;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_OTHER: u16 = 0x20;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// The attribute's bytes for a minimal ACL (owner, group, other), entries
/// in the tag order the kernel requires.
fn minimal_acl(user: u16, group: u16, other: u16) -> Vec<u8> {
    let mut out = ACL_XATTR_VERSION.to_le_bytes().to_vec();
    for (tag, perm) in [(ACL_USER_OBJ, user), (ACL_GROUP_OBJ, group), (ACL_OTHER, other)] {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&ACL_UNDEFINED_ID.to_le_bytes());
    }
    out
}

/// `setfacl -d -m u::rwx,g::rwx,o::rx DIR`: what is created below `dir`
/// gets group write whatever the creator's umask. A file system without
/// ACLs is let be, with a warning: files are then group-writable only when
/// their creator makes them so.
pub fn set_default_group_writable(dir: &Path) -> std::io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let value = minimal_acl(7, 7, 5);
    // SAFETY: both strings are NUL-terminated and outlive the call; `value`
    // is a valid buffer of the length passed.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"system.posix_acl_default".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        tracing::warn!(dir = %dir.display(), "no POSIX ACLs here: files made by one sandbox may not be writable by another");
        return Ok(());
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let v = minimal_acl(7, 7, 5);
        assert_eq!(v.len(), 4 + 3 * 8);
        assert_eq!(&v[..4], &[2, 0, 0, 0]);
        assert_eq!(&v[4..8], &[1, 0, 7, 0]);
        assert_eq!(&v[20..24], &[0x20, 0, 5, 0]);
    }
}
