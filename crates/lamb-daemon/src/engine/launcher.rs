//! The engine's seam to the sandbox library: what creates a sandbox
//! ([`Launcher`]) and what the engine does with one ([`SandboxHandle`]).
//! The daemon launches through the root spawner (`lamb_sandbox::Spawner`);
//! the engine's unit tests launch an in-process fake of `lamb init`
//! (`super::fake`), so admission and the pool are tested without root.

use lamb_sandbox::{CpuLimit, Exit, RemoteSandbox, Result, SandboxIo, SandboxSpec, Spawner};
use std::fmt::Debug;
use std::path::Path;

/// Creates sandboxes. Blocking: the engine calls it on the blocking pool.
pub trait Launcher: Send + Sync + 'static {
    /// A sandbox running `spec`'s process with `io`; its init speaks the
    /// protocol on the first of `io.extra_fds`.
    fn create(&self, spec: &SandboxSpec, io: SandboxIo) -> Result<Box<dyn SandboxHandle>>;
    /// A cold start is over (its caller has the answer): the launcher's
    /// work kept for idle time may run now rather than beside the start.
    fn idle(&self) {}
}

/// One created sandbox. Blocking calls, like [`Launcher::create`].
pub trait SandboxHandle: Send + Debug {
    fn freeze(&mut self) -> Result<()>;
    fn thaw(&mut self) -> Result<()>;
    /// Kills every process; the sandbox stays until destroyed.
    fn kill(&mut self) -> Result<()>;
    /// The sandbox's peak memory (`Max Memory Used`).
    fn memory_peak_bytes(&self) -> Result<u64>;
    /// Sets the sandbox's CPU quota and weight (init's, then the invocations').
    fn set_cpu(&mut self, cpu: &CpuLimit) -> Result<()>;
    /// Sets the sandbox's memory limit (a pre-initialised sandbox's, to its function's).
    fn set_memory(&mut self, bytes: u64) -> Result<()>;
    /// Mounts a host directory read-only at `target` inside the running
    /// sandbox (a pre-initialised sandbox's code, docs/prewarm.md).
    fn bind_directory(&mut self, source: &Path, target: &Path) -> Result<()>;
    /// Kills and removes the sandbox; how its first process ended.
    fn destroy(self: Box<Self>) -> Result<Exit>;
}

impl Launcher for Spawner {
    fn create(&self, spec: &SandboxSpec, io: SandboxIo) -> Result<Box<dyn SandboxHandle>> {
        Ok(Box::new(Spawner::create(self, spec, io)?))
    }

    fn idle(&self) {
        if let Err(e) = Spawner::idle(self) {
            tracing::warn!(error = %lamb_protocol::errors::Chain(&e), "cannot tell the spawner it is idle");
        }
    }
}

impl SandboxHandle for RemoteSandbox {
    fn freeze(&mut self) -> Result<()> {
        lamb_sandbox::Handle::freeze(self)
    }

    fn thaw(&mut self) -> Result<()> {
        lamb_sandbox::Handle::thaw(self)
    }

    fn kill(&mut self) -> Result<()> {
        lamb_sandbox::Handle::kill(self)
    }

    fn memory_peak_bytes(&self) -> Result<u64> {
        lamb_sandbox::Handle::memory_peak_bytes(self)
    }

    fn set_cpu(&mut self, cpu: &CpuLimit) -> Result<()> {
        lamb_sandbox::Handle::set_cpu(self, cpu)
    }

    fn set_memory(&mut self, bytes: u64) -> Result<()> {
        lamb_sandbox::Handle::set_memory(self, bytes)
    }

    fn bind_directory(&mut self, source: &Path, target: &Path) -> Result<()> {
        RemoteSandbox::bind_directory(self, source, target)
    }

    fn destroy(self: Box<Self>) -> Result<Exit> {
        RemoteSandbox::destroy(*self)
    }
}
