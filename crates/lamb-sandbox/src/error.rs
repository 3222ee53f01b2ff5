//! The errors of the sandbox library: each variant says which step failed.

use std::io;
use std::path::PathBuf;

use crate::child::Step;

/// Everything that can go wrong while creating, running or destroying a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("no usable cgroup hierarchy found: {0}")]
    NoCgroups(String),
    #[error("cgroup {op} failed at {path}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("preparing sandbox directory {path} failed")]
    PrepareDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("making the sandbox's /tmp at {path} failed")]
    TmpDisk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("clone of the sandbox process failed")]
    Clone(#[source] io::Error),
    #[error("sandbox set-up failed at step `{step}`")]
    ChildSetup {
        step: Step,
        #[source]
        source: io::Error,
    },
    #[error("setting up the user namespace failed at {path}")]
    UserNamespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("talking to the sandbox process failed")]
    Sync(#[source] io::Error),
    #[error("waiting for the sandbox process failed")]
    Wait(#[source] io::Error),
    #[error("signalling the sandbox failed")]
    Signal(#[source] io::Error),
    #[error("the spawner process failed: {0}")]
    Spawner(String),
    #[error("the sandboxes' network failed")]
    Network(#[source] io::Error),
    #[error("removing {path} failed")]
    Cleanup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// Wraps an I/O error on a cgroup file with the operation and path.
pub(crate) fn cgroup_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.into();
    move |source| SandboxError::Cgroup { op, path, source }
}
