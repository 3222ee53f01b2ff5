//! lamb's sandbox: Linux namespaces, a read-only overlay root, a cgroup and no
//! privileges, for one process tree. Synchronous, and it knows nothing of Lambda.
//!
//! ```no_run
//! use lamb_sandbox::{Sandboxer, SandboxerConfig, SandboxSpec, ProcessSpec, User, SandboxIo};
//! let sandboxer = Sandboxer::new(SandboxerConfig {
//!     state_dir: "/var/lib/lamb/sandboxes".into(),
//!     cgroup_parent: "lamb".into(),
//!     network: None,
//! })?;
//! let process = ProcessSpec { argv: vec!["/bin/true".into()], env: vec![], cwd: "/".into() };
//! let spec = SandboxSpec::new(vec!["/var/lib/lamb/runtimes/provided.al2023".into()], process, User { uid: 993, gid: 990 });
//! let outcome = sandboxer.run(&spec, SandboxIo::default())?;
//! println!("{} with {} bytes at peak", outcome.exit, outcome.stats.memory_peak_bytes);
//! # Ok::<(), lamb_sandbox::SandboxError>(())
//! ```
//!
//! The calling process must be root. [`Sandboxer::create`] clones from the
//! calling thread; the child runs only pre-built, allocation-free code (see
//! [`child`](crate::child)), so a multi-threaded caller is safe, though a
//! small spawner process keeps the clone cheapest.

mod assign;
pub mod cgroup;
mod child;
mod error;
pub mod ext4;
mod handle;
mod loopdev;
pub mod network;
pub mod oci;
mod plan;
mod sandbox;
pub mod seccomp;
pub mod spawner;
pub mod spec;
mod sweep;
mod tmp_disk;
pub mod v1_tuning;

pub use cgroup::{CgroupStats, CgroupVersion};
pub use child::Step;
pub use error::{Result, SandboxError};
pub use handle::Handle;
pub use network::{Ipv4Cidr, NetworkConfig};
pub use sandbox::{Exit, RunOutcome, Sandbox, SandboxIo, Sandboxer, SandboxerConfig, SweepReport};
pub use spawner::{RemoteSandbox, Spawner};
pub use spec::{CpuLimit, IdMapping, Limits, MountSpec, ProcessSpec, SandboxSpec, TmpStorage, User};

/// The prefix of every cgroup and path a sandbox creates, so a sweep can find them.
pub const SANDBOX_PREFIX: &str = "lamb-";
