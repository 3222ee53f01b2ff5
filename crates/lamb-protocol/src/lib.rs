//! What `lamb init` (PID 1 of every sandbox) and the daemon share, written
//! once and with no dependencies, so init keeps its small set: the messages
//! over the socketpair between them ([`init`]), the JSON error bodies both
//! write ([`errors`]), Go's wording of how a process ended ([`exit`]), and
//! where the Runtime API listens.

pub mod errors;
pub mod exit;
pub mod init;

/// Where the Runtime API listens (spec 1.1): numeric, so a static bootstrap
/// needs no resolver.
pub const RUNTIME_API: &str = "127.0.0.1:9001";

/// The runtimes whose bootstrap the function brings (spec 2.3).
pub fn is_custom_runtime(runtime: &str) -> bool {
    matches!(runtime, "provided" | "provided.al2" | "provided.al2023")
}
