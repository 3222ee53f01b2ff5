//! IPv4 prefixes (`198.18.0.0/20`): the sandboxes' subnet, `--egress-allow`
//! and the host's routes they must not overlap.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: an address with the bits past `prefix` cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The network of `address/prefix`; an error past /32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Result<Ipv4Cidr, String> {
        if prefix > 32 {
            return Err(format!("{address}/{prefix}: the prefix length is at most 32"));
        }
        Ok(Ipv4Cidr {
            network: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses it spans.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`th address from the network address, if inside.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + n as u32))
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two share any address: one contains the other's network.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    /// `A.B.C.D/N`; the host bits must be zero, so that a typo is not taken for another network.
    fn from_str(s: &str) -> Result<Ipv4Cidr, String> {
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s}: expected an IPv4 network as A.B.C.D/N"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{s}: {address} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{s}: {prefix} is not a prefix length"))?;
        let cidr = Ipv4Cidr::new(address, prefix)?;
        if cidr.network != address {
            return Err(format!("{s}: host bits are set (the network is {cidr})"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(cidr("198.18.0.0/20").to_string(), "198.18.0.0/20");
        assert_eq!(cidr("0.0.0.0/0").size(), 1 << 32);
        assert!("198.18.0.1/20".parse::<Ipv4Cidr>().is_err());
        assert!("198.18.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("198.18.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("fd00::/8".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn overlaps_either_way() {
        assert!(cidr("10.0.0.0/8").overlaps(&cidr("10.1.2.0/24")));
        assert!(cidr("10.1.2.0/24").overlaps(&cidr("10.0.0.0/8")));
        assert!(!cidr("10.1.2.0/24").overlaps(&cidr("10.1.3.0/24")));
        assert!(cidr("198.18.0.0/20").overlaps(&cidr("198.18.15.255/32")));
        assert!(!cidr("198.18.0.0/20").overlaps(&cidr("198.18.16.0/32")));
    }

    #[test]
    fn nth_stays_inside() {
        let net = cidr("198.18.16.0/20");
        assert_eq!(net.nth(1), Some(Ipv4Addr::new(198, 18, 16, 1)));
        assert_eq!(net.nth(4095), Some(Ipv4Addr::new(198, 18, 31, 255)));
        assert_eq!(net.nth(4096), None);
    }
}
