//! `lamb-init`: `lamb init` alone, the executable every sandbox's PID 1 runs
//! (docs/sandbox.md). The daemon mounts it at `/.lamb/lamb` when it lies next
//! to `lamb`, and `lamb` itself otherwise, with the same command line
//! (`init --runtime R ...`). Why a binary of its own: `lamb` holds the daemon,
//! the API, the clients and their TLS stacks, a position-independent
//! executable the loader relocates at every start (about 63,000 relocations,
//! 2.8 ms of CPU and 475 page faults for `lamb --version`); a cold start pays
//! that once more for every sandbox. This one links `lamb_init` alone.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--version") {
        // What `lamb serve` checks before it uses this binary: built from its own init code.
        println!("lamb-init {} {}", env!("CARGO_PKG_VERSION"), lamb_init::FINGERPRINT);
        return;
    }
    if args.get(1).map(String::as_str) != Some("init") {
        eprintln!("lamb-init: run by lamb serve in each sandbox as `lamb-init init --runtime R ...` (docs/sandbox.md)");
        std::process::exit(2);
    }
    std::process::exit(lamb_init::main(&args[2..]));
}
