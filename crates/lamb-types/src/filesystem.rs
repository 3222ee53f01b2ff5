//! `FileSystemConfigs`: a host directory mounted into the sandbox, the way
//! Lambda mounts an EFS access point.
//!
//! lamb has no EFS. The daemon serves host directories by name
//! (`lamb serve --filesystem NAME=PATH`), and a function names one with an
//! access-point ARN whose resource is `access-point/<NAME>`:
//! `arn:aws:elasticfilesystem:<region>:<account>:access-point/<NAME>`.
//! Region and account must be the daemon's own, as for any local resource.

use crate::arn::ArnContext;
use crate::error::LambdaError;
use serde::{Deserialize, Serialize};

/// At most this many file systems per function, as in Lambda.
pub const MAX_FILE_SYSTEMS: usize = 1;
/// Longest `LocalMountPath`.
pub const MAX_LOCAL_MOUNT_PATH_LEN: usize = 160;
/// Longest served file system name.
pub const MAX_FILE_SYSTEM_NAME_LEN: usize = 64;

/// One member of `FileSystemConfigs`, in requests and in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileSystemConfig {
    pub arn: String,
    pub local_mount_path: String,
}

/// The access-point ARN of a served file system.
pub fn access_point_arn(ctx: &ArnContext, name: &str) -> String {
    format!(
        "arn:{}:elasticfilesystem:{}:{}:access-point/{name}",
        ctx.partition, ctx.region, ctx.account
    )
}

/// `[a-zA-Z0-9-_.]+`, 1–64 characters: the name a file system is served as.
pub fn is_file_system_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_SYSTEM_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name != "."
        && name != ".."
}

/// The served name an access-point ARN of this box names.
pub fn file_system_name<'a>(ctx: &ArnContext, arn: &'a str) -> Result<&'a str, LambdaError> {
    let prefix = format!(
        "arn:{}:elasticfilesystem:{}:{}:access-point/",
        ctx.partition, ctx.region, ctx.account
    );
    match arn.strip_prefix(&prefix) {
        Some(name) if is_file_system_name(name) => Ok(name),
        _ => Err(LambdaError::invalid_parameter(format!(
            "FileSystemConfig Arn '{arn}' is not an access point of this lamb: expected {prefix}<NAME>, \
             NAME given to lamb serve --filesystem NAME=PATH"
        ))),
    }
}

/// `LocalMountPath`: `^/mnt/[a-zA-Z0-9-_.]+$`, at most 160 characters.
pub fn validate_local_mount_path(path: &str) -> Result<(), LambdaError> {
    // `/mnt/.` and `/mnt/..` match Lambda's pattern but are no directory of
    // their own; they are refused too.
    let ok = path.len() <= MAX_LOCAL_MOUNT_PATH_LEN
        && path.strip_prefix("/mnt/").is_some_and(|rest| {
            !rest.is_empty()
                && rest != "."
                && rest != ".."
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if !ok {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{path}' at 'fileSystemConfigs.1.member.localMountPath' \
             failed to satisfy constraint: Member must satisfy regular expression pattern: ^/mnt/[a-zA-Z0-9-_.]+$"
        )));
    }
    Ok(())
}

/// Every rule of `FileSystemConfigs` that needs no daemon state: at most one,
/// a mount path under `/mnt/`, an access-point ARN of this box. Answers the
/// served names, in order.
pub fn validate_file_system_configs<'a>(
    ctx: &ArnContext,
    configs: &'a [FileSystemConfig],
) -> Result<Vec<&'a str>, LambdaError> {
    if configs.len() > MAX_FILE_SYSTEMS {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value at 'fileSystemConfigs' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_FILE_SYSTEMS}"
        )));
    }
    configs
        .iter()
        .map(|c| {
            validate_local_mount_path(&c.local_mount_path)?;
            file_system_name(ctx, &c.arn)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths() {
        for ok in ["/mnt/data", "/mnt/a-b_c.d", "/mnt/x"] {
            validate_local_mount_path(ok).unwrap();
        }
        for bad in [
            "/mnt/", "/mnt", "/data", "/mnt/a/b", "/mnt/..", "/mnt/.", "/mnt/a b", "mnt/a",
        ] {
            assert!(validate_local_mount_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arns_round_trip() {
        let ctx = ArnContext::default();
        let arn = access_point_arn(&ctx, "photos");
        assert_eq!(file_system_name(&ctx, &arn).unwrap(), "photos");
        assert!(file_system_name(&ctx, "arn:aws:elasticfilesystem:us-east-1:123:access-point/fsap-1").is_err());
        assert!(file_system_name(&ctx, &access_point_arn(&ctx, "..")).is_err());
        assert!(file_system_name(&ctx, &access_point_arn(&ctx, "a/b")).is_err());
    }

    #[test]
    fn at_most_one() {
        let ctx = ArnContext::default();
        let c = FileSystemConfig {
            arn: access_point_arn(&ctx, "p"),
            local_mount_path: "/mnt/p".into(),
        };
        assert_eq!(
            validate_file_system_configs(&ctx, std::slice::from_ref(&c)).unwrap(),
            vec!["p"]
        );
        assert!(validate_file_system_configs(&ctx, &[c.clone(), c]).is_err());
    }

    #[test]
    fn reads_botocore_json() {
        let c: FileSystemConfig = serde_json::from_str(r#"{"Arn":"a","LocalMountPath":"/mnt/x"}"#).unwrap();
        assert_eq!(c.local_mount_path, "/mnt/x");
    }
}
