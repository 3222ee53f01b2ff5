//! A small synchronous rtnetlink client: one request, its acknowledgement
//! (or its dump), on a socket bound to the network namespace of the thread
//! that opened it. The sandbox's network is set up from the spawner's single
//! thread, so an async client would only add a runtime to it.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::cidr::Ipv4Cidr;

/// An rtnetlink socket in the namespace it was opened in.
pub(crate) struct Netlink {
    socket: Socket,
    sequence: u32,
}

/// Create flags: fail rather than silently reuse an object of the same name.
const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, sequence: 0 })
    }

    /// A veth pair: `host` here, up; its peer `eth0`, with ifindex `peer_index`,
    /// straight in the network namespace `netns_fd`. The peer is brought up
    /// from inside ([`Netlink::set_up`]): a veth cannot open before its pair is linked.
    pub fn add_veth(&mut self, host: &str, netns_fd: i32, peer_index: u32) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.header.index = peer_index;
        peer.attributes.push(LinkAttribute::IfName("eth0".into()));
        peer.attributes.push(LinkAttribute::NetNsFd(netns_fd));
        let mut link = LinkMessage::default();
        up(&mut link);
        link.attributes.push(LinkAttribute::IfName(host.into()));
        link.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(link), CREATE)
    }

    /// Brings the link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        up(&mut link);
        self.request(RouteNetlinkMessage::SetLink(link), 0)
    }

    /// A bridge named `name`, up, with no port: it only carries the host's address.
    pub fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut link = LinkMessage::default();
        up(&mut link);
        link.attributes.push(LinkAttribute::IfName(name.into()));
        link.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(RouteNetlinkMessage::NewLink(link), CREATE)
    }

    /// Deletes the link `name`; `Ok(false)` if there was none.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(RouteNetlinkMessage::DelLink(link), 0) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names of every link in this namespace.
    pub fn link_names(&mut self) -> io::Result<Vec<String>> {
        let replies = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => link.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Every IPv4 destination with a route in any table, but default routes,
    /// with the link the route leads out of.
    pub fn ipv4_routes(&mut self) -> io::Result<Vec<(Ipv4Cidr, Option<u32>)>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let replies = self.dump(RouteNetlinkMessage::GetRoute(query))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) if route.header.destination_prefix_length > 0 => {
                    let prefix = route.header.destination_prefix_length;
                    let oif = route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(index) => Some(*index),
                        _ => None,
                    });
                    route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(addr)) => {
                            Ipv4Cidr::new(*addr, prefix).ok().map(|cidr| (cidr, oif))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// `address/prefix` on the link with index `index`.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes.push(AddressAttribute::Local(address.into()));
        message.attributes.push(AddressAttribute::Address(address.into()));
        self.request(RouteNetlinkMessage::NewAddress(message), CREATE)
    }

    /// A route to `destination` out of the link `index`, through `gateway`
    /// (on-link: no subnet route leads to it) or straight (scope link).
    pub fn add_route(&mut self, destination: Ipv4Cidr, index: u32, gateway: Option<Ipv4Addr>) -> io::Result<()> {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.destination_prefix_length = destination.prefix();
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Static;
        route.header.kind = RouteType::Unicast;
        route.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if destination.prefix() > 0 {
            route
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(destination.network())));
        }
        route.attributes.push(RouteAttribute::Oif(index));
        if let Some(gateway) = gateway {
            route.header.flags = RouteFlags::Onlink;
            route
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        self.request(RouteNetlinkMessage::NewRoute(route), CREATE)
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let sequence = self.send(message, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != sequence {
                    continue;
                }
                if let NetlinkPayload::Error(error) = reply.payload {
                    return match error.code {
                        None => Ok(()),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    };
                }
            }
        }
    }

    /// Sends one dump request and gathers its replies until `Done`.
    fn dump(&mut self, message: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let sequence = self.send(message, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut replies = Vec::new();
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(error) if error.code.is_some() => return Err(error.to_io()),
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(self.sequence)
    }

    /// One datagram's messages.
    fn receive(&mut self) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let (buf, _) = self.socket.recv_from_full()?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < buf.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = message.header.length as usize;
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
            messages.push(message);
        }
        Ok(messages)
    }
}

fn up(link: &mut LinkMessage) {
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
}

/// The index of the link `name` in the calling thread's network namespace.
pub(crate) fn link_index(name: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: if_nametoindex reads a valid C string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}
