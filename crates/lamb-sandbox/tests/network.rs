//! Root tests of the sandboxes' network (`lamb_sandbox::network`): a
//! sandboxer with a network gives each prepared namespace a veth and an
//! address, reuses addresses, and leaves nothing behind when stopped.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use lamb_sandbox::{Exit, NetworkConfig, SandboxIo, Sandboxer, SandboxerConfig};

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
            // Every form of rule, for the real nft to parse: a port named
            // twice, overlapping ranges.
            api: Some("127.0.0.1:9".parse().unwrap()),
            host_ports: vec![5432, 6379, 5432],
            egress_allow: vec!["10.0.0.0/8".parse().unwrap(), "10.1.0.0/16".parse().unwrap()],
        }),
    })
    .expect("a sandboxer with a network");
    // Another daemon's subnet over this one's route is refused, naming it.
    let refused = Sandboxer::new(SandboxerConfig {
        state_dir: common::state_dir().with_file_name("net-state-2"),
        cgroup_parent: "lamb-test-net-2".into(),
        network: Some(NetworkConfig {
            id: "0ddba11cafe0".into(),
            subnet: Some("198.19.240.0/24".parse().unwrap()),
            api: None,
            host_ports: vec![],
            egress_allow: vec![],
        }),
    })
    .expect_err("an overlapping subnet is refused");
    let chain = format!("{:?}", refused);
    assert!(
        chain.contains("overlaps the host's route to 198.19.240.0/28"),
        "{chain}"
    );
    assert!(!links().contains("lamb0ddba11caf"), "the refused start made nothing");
    assert!(links().contains("lambfeedc0ffee"), "nor touched the first one's bridge");
    assert!(links().contains("lambfeedc0ffee"), "{}", links());
    assert_eq!(sandboxer.prepare_network_namespaces(3).unwrap(), 3);
    let names = links();
    for veth in ["lvfeedc0ff0", "lvfeedc0ff1", "lvfeedc0ff2"] {
        assert!(names.contains(veth), "{veth} in {names}");
    }
    // A sandbox takes the last prepared namespace: slot 2, the subnet's fourth address.
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write.try_clone().unwrap()),
        stderr: Some(write),
        ..SandboxIo::default()
    };
    let spec = common::shell("ip -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf");
    let mut sandbox = sandboxer.create(&spec, io).expect("a sandbox with a network");
    let out = common::read_all(read);
    assert_eq!(sandbox.wait().unwrap(), Exit::Code(0), "{out}");
    for expected in [
        "inet 198.19.240.4/32",
        "default via 198.19.240.1 dev eth0",
        "198.19.240.1\thost.lamb.internal",
        "nameserver 198.19.240.1",
    ] {
        assert!(out.contains(expected), "{expected:?} in {out}");
    }
    sandbox.destroy().unwrap();
    // Its address is free again once its veth is deleted: the next namespace gets it.
    let network = sandboxer.network().expect("a network");
    let deadline = Instant::now() + Duration::from_secs(10);
    while network.addresses_in_use() > 2 {
        assert!(Instant::now() < deadline, "the dead sandbox's address is freed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!links().contains("lvfeedc0ff2"), "{}", links());
    assert_eq!(sandboxer.prepare_network_namespaces(3).unwrap(), 1);
    assert!(links().contains("lvfeedc0ff2"), "{}", links());
    assert!(!links().contains("lvfeedc0ff3"), "{}", links());
    sandboxer.stop_network();
    let names = links();
    assert!(
        !names.contains("lvfeedc0ff") && !names.contains("lambfeedc0ffee"),
        "{names}"
    );
}
