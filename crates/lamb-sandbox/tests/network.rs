//! Root tests of the sandboxes' network (`lamb_sandbox::network`): a
//! sandboxer with a network gives each prepared namespace a veth and an
//! address, reuses addresses, and leaves nothing behind when stopped.

mod common;

use std::process::Command;

use lamb_sandbox::{NetworkConfig, Sandboxer, SandboxerConfig};

fn links() -> String {
    String::from_utf8(Command::new("ip").args(["-br", "link"]).output().unwrap().stdout).unwrap()
}

#[test]
fn prepared_namespaces_get_veths_which_the_stop_removes() {
    require_root!();
    let state = common::state_dir().with_file_name("net-state");
    let sandboxer = Sandboxer::new(SandboxerConfig {
        state_dir: state,
        cgroup_parent: "lamb-test-net".into(),
        network: Some(NetworkConfig {
            id: "feedc0ffee00".into(),
            subnet: Some("198.19.240.0/28".parse().unwrap()),
            api: None,
            host_ports: vec![],
            egress_allow: vec![],
        }),
    })
    .expect("a sandboxer with a network");
    assert!(links().contains("lambfeedc0ffee"), "{}", links());
    assert_eq!(sandboxer.prepare_network_namespaces(3).unwrap(), 3);
    let names = links();
    for veth in ["lvfeedc0ff0", "lvfeedc0ff1", "lvfeedc0ff2"] {
        assert!(names.contains(veth), "{veth} in {names}");
    }
    sandboxer.stop_network();
    let names = links();
    assert!(
        !names.contains("lvfeedc0ff") && !names.contains("lambfeedc0ffee"),
        "{names}"
    );
}
