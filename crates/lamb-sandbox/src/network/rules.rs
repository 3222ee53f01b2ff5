//! The daemon's nftables table: NAT out, the host ports sandboxes may reach,
//! and the isolation rules (docs/network.md says why each is there).
//!
//! The table is written once at start-up and deleted at stop, in one atomic
//! `nft -f -` transaction each; nothing here runs per sandbox (the
//! per-sandbox work is netlink only), and every rule matches this daemon's
//! own veth prefix, so several daemons' tables never act on each other's traffic.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};

use super::cidr::Ipv4Cidr;

/// Destinations a sandbox may not reach unless `--egress-allow` opens them:
/// "this network", RFC 1918, CGNAT, loopback, link-local (the metadata
/// address), the benchmarking range lamb's own subnets come from, multicast
/// and reserved.
pub const PRIVATE_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
];

/// What the table is made of.
#[derive(Debug, Clone)]
pub struct Ruleset<'a> {
    pub table: &'a str,
    /// Matches every host-side veth of this daemon (`lv0123abcd*`).
    pub veth_pattern: &'a str,
    pub subnet: Ipv4Cidr,
    /// `host.lamb.internal`.
    pub gateway: Ipv4Addr,
    /// Where the gateway's port of the same number goes: the Lambda API.
    pub api: Option<SocketAddrV4>,
    /// Ports of the host's 127.0.0.1 reachable at the gateway.
    pub host_ports: &'a [u16],
    /// The host's DNS resolver, which the gateway's port 53 reaches.
    pub resolver: Option<Ipv4Addr>,
    pub egress_allow: &'a [Ipv4Cidr],
}

impl Ruleset<'_> {
    /// The nft script that replaces the table atomically (create, delete, fill).
    pub fn script(&self) -> String {
        let table = self.table;
        let veth = self.veth_pattern;
        let gw = self.gateway;
        let mut dnat = Vec::new();
        if let Some(api) = self.api {
            dnat.push(format!(
                "iifname \"{veth}\" ip daddr {gw} tcp dport {} dnat ip to {api}",
                api.port()
            ));
        }
        if !self.host_ports.is_empty() {
            // A set refuses duplicates: a port named twice is named once.
            let ports = join(
                self.host_ports
                    .iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter(),
            );
            dnat.push(format!(
                "iifname \"{veth}\" ip daddr {gw} tcp dport {{ {ports} }} dnat ip to 127.0.0.1"
            ));
        }
        if let Some(resolver) = self.resolver {
            dnat.push(format!(
                "iifname \"{veth}\" ip daddr {gw} meta l4proto {{ tcp, udp }} th dport 53 dnat ip to {resolver}:53"
            ));
        }
        // A rule each: ranges that overlap would conflict in one interval set.
        let allowed: String = self
            .egress_allow
            .iter()
            .map(|cidr| format!("\t\tiifname \"{veth}\" ip daddr {cidr} accept\n"))
            .collect();
        let subnet = self.subnet;
        let private = PRIVATE_RANGES.join(", ");
        let reject = "reject with icmpx type admin-prohibited";
        format!(
            "table inet {table}\n\
             delete table inet {table}\n\
             table inet {table} {{\n\
             \tchain antispoof {{\n\
             \t\ttype filter hook prerouting priority raw; policy accept;\n\
             \t\tiifname \"{veth}\" fib saddr . iif oif missing drop\n\
             \t}}\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             {dnat}\
             \t}}\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr {subnet} ip daddr != {subnet} masquerade\n\
             \t}}\n\
             \tchain loopback_source {{\n\
             \t\ttype nat hook input priority 100; policy accept;\n\
             \t\tiifname \"{veth}\" ip daddr 127.0.0.0/8 snat ip to 127.0.0.1\n\
             \t}}\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname != \"{veth}\" accept\n\
             \t\tct state established,related accept\n\
             \t\tct status dnat accept\n\
             \t\t{reject}\n\
             \t}}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\toifname \"{veth}\" ct state established,related accept\n\
             \t\toifname \"{veth}\" {reject}\n\
             \t\tiifname != \"{veth}\" accept\n\
             \t\tct status dnat accept\n\
             {allowed}\
             \t\tip daddr {{ {private} }} {reject}\n\
             \t\tmeta nfproto ipv6 {reject}\n\
             \t}}\n\
             }}\n",
            dnat = dnat.iter().map(|rule| format!("\t\t{rule}\n")).collect::<String>(),
        )
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// The script that deletes the table, whether or not it exists.
pub fn delete_script(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\n")
}

/// Runs an nft script as one transaction.
pub fn apply(script: &str) -> std::io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("run nft (Debian package nftables): {e}")))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "nft: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset<'a>(ports: &'a [u16], allow: &'a [Ipv4Cidr]) -> Ruleset<'a> {
        Ruleset {
            table: "lamb-0123456789ab",
            veth_pattern: "lv01234567*",
            subnet: "198.18.0.0/20".parse().unwrap(),
            gateway: Ipv4Addr::new(198, 18, 0, 1),
            api: Some("127.0.0.1:9080".parse().unwrap()),
            host_ports: ports,
            resolver: Some(Ipv4Addr::new(127, 0, 0, 53)),
            egress_allow: allow,
        }
    }

    #[test]
    fn only_this_daemons_veths_are_filtered() {
        let script = ruleset(&[5432], &[]).script();
        // Other traffic leaves the filter chains before their refusals.
        assert_eq!(script.matches("iifname != \"lv01234567*\" accept").count(), 2);
        for line in script
            .lines()
            .filter(|l| l.contains("dnat ip to") || l.contains("fib saddr"))
        {
            assert!(line.contains("iifname \"lv01234567*\""), "{line}");
        }
        assert!(script.starts_with("table inet lamb-0123456789ab\ndelete table inet lamb-0123456789ab\n"));
    }

    #[test]
    fn host_ports_and_the_api_are_forwarded_to_loopback() {
        let script = ruleset(&[6379, 5432, 6379], &[]).script();
        assert!(script.contains("ip daddr 198.18.0.1 tcp dport 9080 dnat ip to 127.0.0.1:9080"));
        assert!(script.contains("ip daddr 198.18.0.1 tcp dport { 5432, 6379 } dnat ip to 127.0.0.1"));
        assert!(script.contains("th dport 53 dnat ip to 127.0.0.53:53"));
        // A service on 127.0.0.1 sees its sandbox clients as local ones, as its configuration expects.
        assert!(script.contains("iifname \"lv01234567*\" ip daddr 127.0.0.0/8 snat ip to 127.0.0.1"));
        let none = ruleset(&[], &[]).script();
        assert!(!none.contains("dport {"), "no host port rule without --host-port");
    }

    #[test]
    fn private_ranges_are_refused_unless_allowed_first() {
        let allow = ["10.0.0.0/8".parse().unwrap(), "10.1.0.0/16".parse().unwrap()];
        let script = ruleset(&[], &allow).script();
        let allowed = script.find("ip daddr 10.0.0.0/8 accept").expect("the allow rule");
        assert!(
            script.contains("ip daddr 10.1.0.0/16 accept"),
            "overlapping ranges, a rule each"
        );
        let refused = script
            .find("ip daddr { 0.0.0.0/8, 10.0.0.0/8")
            .expect("the private ranges");
        assert!(allowed < refused, "the allow rule comes before the refusal");
        assert!(script.contains("169.254.0.0/16"));
        assert!(!ruleset(&[], &[]).script().contains("ip daddr 10."));
    }

    #[test]
    fn replies_pass_before_the_refusals() {
        let script = ruleset(&[], &[]).script();
        let replies = script
            .find("oifname \"lv01234567*\" ct state established,related accept")
            .unwrap();
        let inbound = script.find("oifname \"lv01234567*\" reject").unwrap();
        assert!(replies < inbound);
        assert!(script.contains("ip saddr 198.18.0.0/20 ip daddr != 198.18.0.0/20 masquerade"));
    }
}
