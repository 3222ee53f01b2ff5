//! A network for every sandbox (`--network nat`): a veth pair per network
//! namespace, routed (not bridged) to the host, NAT out, and nftables rules
//! that keep each sandbox to the internet, the Lambda API and the host ports
//! it was given. docs/network.md has the design; in short:
//!
//! - The daemon's subnet (one per data directory) has the gateway, the
//!   address of `host.lamb.internal`, at `.1` on a port-less bridge of its
//!   own (`lamb<id>`), which only carries that address and the subnet's route
//!   (so a second daemon cannot pick an overlapping subnet).
//! - Each sandbox's namespace gets `eth0` with a /32 from the subnet and a
//!   default route through the gateway; the host side (`lv<id><slot>`) gets
//!   a /32 route to it. Made while the spawner is idle, with the namespace
//!   itself (`Sandboxer::prepare_network_namespaces`), so a cold start pays nothing.
//! - Addresses are slots, reused once the sandbox's veth is gone.
//! - Everything is found by name: a start sweeps what a killed daemon of the
//!   same data directory left, and a stop removes what it made.

mod cidr;
mod netlink;
mod rules;

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use cidr::Ipv4Cidr;
pub(crate) use netlink::Netlink;
pub use rules::{Ruleset, PRIVATE_RANGES};

/// Where default subnets come from: the benchmarking range (RFC 2544), which
/// no LAN, VPN or cloud network hands out, cut into /20s.
pub const DEFAULT_POOL: &str = "198.18.0.0/15";
/// A default subnet's prefix: 4093 sandboxes at once.
pub const DEFAULT_PREFIX: u8 = 20;
/// The name `/etc/hosts` gives the gateway inside every sandbox.
pub const HOST_NAME: &str = "host.lamb.internal";
/// How many subnets a start tries when other daemons take its choices meanwhile.
const SUBNET_TRIES: usize = 4;
/// The sandbox's end of its veth: ifindex 2 in its namespace (after `lo`), asked for at creation.
const SANDBOX_LINK_INDEX: u32 = 2;

/// What a daemon asks for (`lamb serve --network nat`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkConfig {
    /// Hex digits naming this daemon's objects (a hash of its data directory), 12 at least.
    pub id: String,
    /// `None`: the first /20 of [`DEFAULT_POOL`] that no host route overlaps.
    pub subnet: Option<Ipv4Cidr>,
    /// The Lambda API's listener, reached from sandboxes at the gateway's port of the same number.
    pub api: Option<SocketAddrV4>,
    /// Ports of the host's 127.0.0.1 reachable at the gateway.
    pub host_ports: Vec<u16>,
    /// Private ranges sandboxes may reach after all.
    pub egress_allow: Vec<Ipv4Cidr>,
}

impl NetworkConfig {
    /// `AWS_ENDPOINT_URL_LAMBDA` for a sandbox: the API through `host.lamb.internal`.
    pub fn lambda_endpoint_url(&self) -> Option<String> {
        self.api.map(|api| format!("http://{HOST_NAME}:{}", api.port()))
    }
}

/// The names of one daemon's objects, all derived from its id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    bridge: String,
    veth_prefix: String,
    table: String,
}

impl Names {
    /// Link names have 15 bytes at most: `lamb` + 10 digits, `lv` + 8 digits + up to 5 of the slot.
    fn new(id: &str) -> io::Result<Names> {
        if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("network id {id:?}: 12 hex digits at least"),
            ));
        }
        Ok(Names {
            bridge: format!("lamb{}", &id[..10]),
            veth_prefix: format!("lv{}", &id[..8]),
            table: format!("lamb-{}", &id[..12]),
        })
    }

    fn veth(&self, slot: u32) -> String {
        format!("{}{slot:x}", self.veth_prefix)
    }
}

/// A daemon's live network: made by [`Network::start`], removed by [`Network::stop`].
#[derive(Debug)]
pub struct Network {
    names: Names,
    subnet: Ipv4Cidr,
    gateway: Ipv4Addr,
    slots: Mutex<Slots>,
    /// Deletes released veths on a thread of its own (an unregister waits
    /// for RCU grace periods), then frees their slots. Started on first use,
    /// so that it runs in the spawner, not in the daemon it was forked from.
    reaper: OnceLock<Mutex<Sender<u32>>>,
}

/// Free addresses, as offsets from `.2` of the subnet.
#[derive(Debug)]
struct Slots {
    free: BTreeSet<u32>,
    next: u32,
    capacity: u32,
}

impl Slots {
    /// The subnet's addresses but its network, gateway and broadcast addresses.
    fn new(subnet: Ipv4Cidr) -> Slots {
        Slots {
            free: BTreeSet::new(),
            next: 0,
            capacity: (subnet.size().saturating_sub(3)).min(u64::from(u32::MAX)) as u32,
        }
    }

    /// The lowest free slot, so that addresses stay few and reused.
    fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop_first() {
            return Some(slot);
        }
        (self.next < self.capacity).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn release(&mut self, slot: u32) {
        self.free.insert(slot);
    }

    fn in_use(&self) -> usize {
        self.next as usize - self.free.len()
    }
}

/// One sandbox's address and veth; dropping it deletes the veth and frees the address.
#[derive(Debug)]
pub struct Lease {
    network: Arc<Network>,
    slot: u32,
}

impl Lease {
    pub fn address(&self) -> Ipv4Addr {
        self.network.address(self.slot)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.network.release(self.slot);
    }
}

impl Network {
    /// Sweeps what an earlier daemon of this id left, checks the subnet
    /// against the host's routes, then makes the bridge and the nftables
    /// table and turns on IPv4 forwarding.
    pub fn start(config: &NetworkConfig) -> io::Result<Arc<Network>> {
        let names = Names::new(&config.id)?;
        let mut host = Netlink::open()?;
        sweep(&mut host, &names)?;
        // Another daemon starting at the same moment may choose the same
        // default subnet: once both bridges carry its route, one sees the
        // other's and moves on to the next.
        let mut taken = Vec::new();
        for _ in 0..SUBNET_TRIES {
            let mut routes: Vec<Ipv4Cidr> = host.ipv4_routes()?.into_iter().map(|(cidr, _)| cidr).collect();
            routes.extend(&taken);
            let subnet =
                choose_subnet(config.subnet, &routes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let network = Arc::new(Network {
                slots: Mutex::new(Slots::new(subnet)),
                names: names.clone(),
                subnet,
                gateway: subnet.nth(1).expect("a subnet of 16 addresses at least"),
                reaper: OnceLock::new(),
            });
            match network
                .make_bridge(&mut host)
                .and_then(|()| network.subnet_is_ours(&mut host))
            {
                Ok(true) => {}
                Ok(false) => {
                    network.stop()?;
                    taken.push(subnet);
                    continue;
                }
                Err(e) => {
                    let _ = network.stop();
                    return Err(e);
                }
            }
            if let Err(e) = network.make_rules(config) {
                let _ = network.stop();
                return Err(e);
            }
            return Ok(network);
        }
        Err(io::Error::other(format!(
            "another daemon took each subnet this one chose ({taken:?}); choose one with --subnet"
        )))
    }

    /// The bridge, up, with the gateway's address (and so the subnet's route).
    fn make_bridge(&self, host: &mut Netlink) -> io::Result<()> {
        host.add_bridge(&self.names.bridge)
            .map_err(|e| context(e, format!("create bridge {}", self.names.bridge)))?;
        let index = netlink::link_index(&self.names.bridge)?;
        host.add_address(index, self.gateway, self.subnet.prefix())
    }

    /// Whether no route but the bridge's own leads into the subnet.
    fn subnet_is_ours(&self, host: &mut Netlink) -> io::Result<bool> {
        let bridge = netlink::link_index(&self.names.bridge)?;
        let routes = host.ipv4_routes()?;
        Ok(routes
            .iter()
            .all(|(cidr, oif)| !cidr.overlaps(&self.subnet) || *oif == Some(bridge)))
    }

    /// The nftables table, then IPv4 forwarding.
    fn make_rules(&self, config: &NetworkConfig) -> io::Result<()> {
        let pattern = format!("{}*", self.names.veth_prefix);
        let ruleset = Ruleset {
            table: &self.names.table,
            veth_pattern: &pattern,
            subnet: self.subnet,
            gateway: self.gateway,
            api: config.api.map(loopback_if_unspecified),
            host_ports: &config.host_ports,
            resolver: host_resolver(),
            egress_allow: &config.egress_allow,
        };
        rules::apply(&ruleset.script())?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| context(e, "enable ip_forward".into()))
    }

    /// Removes every veth, the bridge and the table. Idempotent.
    pub fn stop(&self) -> io::Result<()> {
        sweep(&mut Netlink::open()?, &self.names)
    }

    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    /// `host.lamb.internal`.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The sandbox's `/etc/hosts`.
    pub fn hosts(&self) -> String {
        format!("{}{}\t{HOST_NAME}\n", crate::sandbox::HOSTS, self.gateway)
    }

    /// The sandbox's `/etc/resolv.conf`: the gateway, whose port 53 leads to the host's resolver.
    pub fn resolv_conf(&self) -> String {
        format!("nameserver {}\n", self.gateway)
    }

    /// Addresses held by sandboxes and prepared namespaces, and by veths not yet deleted.
    pub fn addresses_in_use(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).in_use()
    }

    fn address(&self, slot: u32) -> Ipv4Addr {
        self.subnet
            .nth(u64::from(slot) + 2)
            .expect("slots stay inside the subnet")
    }

    /// Gives the network namespace `netns` its veth, address and default
    /// route. `inner` is a netlink socket opened inside it; the calling
    /// thread is in the host's namespace.
    pub(crate) fn attach(self: &Arc<Self>, netns: BorrowedFd<'_>, inner: &mut Netlink) -> io::Result<Lease> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| {
                io::Error::other(format!(
                    "no free address left in {}: choose a larger --subnet",
                    self.subnet
                ))
            })?;
        // From here on, a failure deletes whatever was made and frees the slot.
        let lease = Lease {
            network: Arc::clone(self),
            slot,
        };
        let name = self.names.veth(slot);
        let address = lease.address();
        let mut host = Netlink::open()?;
        host.add_veth(&name, netns.as_raw_fd(), SANDBOX_LINK_INDEX)
            .map_err(|e| context(e, format!("create veth {name}")))?;
        let index = netlink::link_index(&name)?;
        host.add_route(Ipv4Cidr::new(address, 32).expect("/32"), index, None)?;
        // The gateway's DNAT to the host's 127.0.0.1 routes a packet from this link to loopback.
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"), "1")?;
        // IPv4 only: no link-local IPv6 path to the host.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        inner.set_up(SANDBOX_LINK_INDEX)?;
        inner.add_address(SANDBOX_LINK_INDEX, address, 32)?;
        let default = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0");
        inner.add_route(default, SANDBOX_LINK_INDEX, Some(self.gateway))?;
        Ok(lease)
    }

    /// Hands a slot to the reaper thread, which deletes its veth and then frees it.
    fn release(self: &Arc<Self>, slot: u32) {
        let sender = self.reaper.get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<u32>();
            let network = Arc::clone(self);
            std::thread::spawn(move || {
                for slot in receiver {
                    network.delete_veth(slot);
                }
            });
            Mutex::new(sender)
        });
        let sent = sender.lock().unwrap_or_else(|e| e.into_inner()).send(slot);
        if sent.is_err() {
            self.delete_veth(slot);
        }
    }

    /// Deletes the slot's veth and frees the slot once its name is free: the
    /// delete's answer comes after the link is unregistered, and a link
    /// already gone (its namespace died first) answers that there is none.
    fn delete_veth(&self, slot: u32) {
        let name = self.names.veth(slot);
        for _ in 0..200 {
            if Netlink::open().and_then(|mut host| host.delete_link(&name)).is_ok() {
                self.slots.lock().unwrap_or_else(|e| e.into_inner()).release(slot);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(veth = %name, "a sandbox's veth outlived it; its address is not reused");
    }
}

/// Deletes this id's veths, bridge and nftables table, whichever exist.
fn sweep(host: &mut Netlink, names: &Names) -> io::Result<()> {
    for name in host.link_names()? {
        if name.starts_with(&names.veth_prefix) || name == names.bridge {
            host.delete_link(&name)
                .map_err(|e| context(e, format!("delete {name}")))?;
        }
    }
    rules::apply(&rules::delete_script(&names.table))
}

/// The asked-for subnet if no host route overlaps it, else the first free
/// /20 of [`DEFAULT_POOL`].
fn choose_subnet(asked: Option<Ipv4Cidr>, routes: &[Ipv4Cidr]) -> Result<Ipv4Cidr, String> {
    let overlap = |subnet: &Ipv4Cidr| routes.iter().find(|r| r.overlaps(subnet)).copied();
    if let Some(subnet) = asked {
        if !(12..=28).contains(&subnet.prefix()) {
            return Err(format!(
                "--subnet {subnet}: the prefix length must be between 12 and 28"
            ));
        }
        if let Some(route) = overlap(&subnet) {
            return Err(format!(
                "--subnet {subnet} overlaps the host's route to {route}; choose a subnet no route of this machine covers"
            ));
        }
        return Ok(subnet);
    }
    let pool: Ipv4Cidr = DEFAULT_POOL.parse().expect("a valid pool");
    let count = 1u64 << (DEFAULT_PREFIX - pool.prefix());
    (0..count)
        .filter_map(|i| pool.nth(i << (32 - DEFAULT_PREFIX)))
        .map(|network| Ipv4Cidr::new(network, DEFAULT_PREFIX).expect("a /20"))
        .find(|candidate| overlap(candidate).is_none())
        .ok_or_else(|| {
            format!("every /{DEFAULT_PREFIX} of {DEFAULT_POOL} is taken by a host route; choose one with --subnet")
        })
}

/// The API listening on every address is reached through loopback.
fn loopback_if_unspecified(api: SocketAddrV4) -> SocketAddrV4 {
    if api.ip().is_unspecified() {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, api.port())
    } else {
        api
    }
}

/// The host's first IPv4 resolver in `/etc/resolv.conf`.
fn host_resolver() -> Option<Ipv4Addr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    first_nameserver(&conf)
}

fn first_nameserver(conf: &str) -> Option<Ipv4Addr> {
    conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn slots_are_reused_lowest_first() {
        let mut slots = Slots::new(cidr("198.18.0.0/28"));
        let taken: Vec<u32> = std::iter::from_fn(|| slots.take()).collect();
        assert_eq!(
            taken,
            (0..13).collect::<Vec<_>>(),
            "16 addresses but network, gateway, broadcast"
        );
        slots.release(7);
        slots.release(3);
        assert_eq!(slots.in_use(), 11);
        assert_eq!(slots.take(), Some(3));
        assert_eq!(slots.take(), Some(7));
        assert_eq!(slots.take(), None);
    }

    #[test]
    fn names_fit_in_a_link_name() {
        let names = Names::new("0123456789abcdef").unwrap();
        assert_eq!(names.bridge, "lamb0123456789");
        assert_eq!(names.table, "lamb-0123456789ab");
        assert_eq!(names.veth(0xfffff), "lv01234567fffff");
        assert!(names.veth(0xfffff).len() < libc::IFNAMSIZ);
        assert!(Names::new("lamb").is_err());
        assert!(Names::new("0123456789zz").is_err());
    }

    #[test]
    fn the_default_subnet_avoids_the_hosts_routes() {
        assert_eq!(
            choose_subnet(None, &[cidr("10.0.0.0/8")]).unwrap(),
            cidr("198.18.0.0/20")
        );
        let taken = [cidr("198.18.0.0/20"), cidr("198.18.16.5/32")];
        assert_eq!(choose_subnet(None, &taken).unwrap(), cidr("198.18.32.0/20"));
        assert!(choose_subnet(None, &[cidr("198.18.0.0/15")]).is_err());
    }

    #[test]
    fn an_asked_subnet_over_a_route_is_refused() {
        let err = choose_subnet(Some(cidr("192.0.2.0/28")), &[cidr("192.0.2.0/24")]).unwrap_err();
        assert!(err.contains("overlaps the host's route to 192.0.2.0/24"), "{err}");
        assert_eq!(
            choose_subnet(Some(cidr("192.0.3.0/24")), &[cidr("192.0.2.0/24")]).unwrap(),
            cidr("192.0.3.0/24")
        );
        assert!(choose_subnet(Some(cidr("192.0.3.0/30")), &[]).is_err());
    }

    #[test]
    fn the_api_and_the_resolver() {
        assert_eq!(
            loopback_if_unspecified("0.0.0.0:9080".parse().unwrap()),
            "127.0.0.1:9080".parse().unwrap()
        );
        assert_eq!(
            first_nameserver("# x\nsearch lan\nnameserver fe80::1\nnameserver 127.0.0.53\n"),
            Some(Ipv4Addr::new(127, 0, 0, 53))
        );
        assert_eq!(first_nameserver("search lan\n"), None);
        let config = NetworkConfig {
            id: "0123456789ab".into(),
            subnet: None,
            api: Some("127.0.0.1:9080".parse().unwrap()),
            host_ports: vec![],
            egress_allow: vec![],
        };
        assert_eq!(
            config.lambda_endpoint_url().as_deref(),
            Some("http://host.lamb.internal:9080")
        );
    }
}
