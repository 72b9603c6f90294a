//! The `net.*` settings: one interface's addresses, default gateways and
//! MTU, and the nameservers and host entries for `/etc/resolv.conf` and
//! `/etc/hosts`. Parsing and the rules are here; [`crate::machine::setup`]
//! applies them (ioctls in [`crate::sys::net`]), and
//! [`crate::machine::network`] writes the files' text.

use std::net::IpAddr;

use crate::config::error::Problem;
use crate::config::value::pick;

/// The interface configured when none is named.
pub const DEFAULT_INTERFACE: &str = "eth0";
/// resolv.conf(5) reads at most three nameservers (`MAXNS`).
const MAX_NAMESERVERS: usize = 3;

/// An address with its prefix length, as in `10.0.2.15/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The network settings as one source gave them; `None` is "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSettings {
    pub interface: Option<String>,
    pub addresses: Option<Vec<Cidr>>,
    pub gateways: Option<Vec<IpAddr>>,
    pub mtu: Option<u32>,
    pub nameservers: Option<Vec<IpAddr>>,
    pub hosts: Option<Vec<(String, IpAddr)>>,
}

/// The `net.*` setting names, for the "unknown setting" message.
const NAMES: &[&str] = &[
    "net.interface",
    "net.address",
    "net.gateway",
    "net.mtu",
    "net.nameservers",
    "net.hosts",
];

impl NetSettings {
    /// Parses and stores `net.NAME=value` (the `net.*` entries of [`crate::config::settings::NAMES`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        match name {
            "interface" => self.interface = Some(parse_interface(value)?),
            "address" => {
                let addresses = list(value, parse_cidr)?;
                if addresses.iter().filter(|a| a.addr.is_ipv4()).count() > 1 {
                    return Err(Problem::BadSetting(
                        "must have at most one IPv4 address (any number of IPv6 ones)",
                    ));
                }
                self.addresses = Some(addresses);
            }
            "gateway" => self.gateways = Some(parse_gateways(value)?),
            "mtu" => self.mtu = Some(parse_mtu(value)?),
            "nameservers" => {
                let servers = list(value, parse_ip)?;
                if servers.len() > MAX_NAMESERVERS {
                    return Err(Problem::BadSetting(
                        "lists more than the 3 nameservers resolv.conf reads",
                    ));
                }
                self.nameservers = Some(servers);
            }
            "hosts" => self.hosts = Some(list(value, parse_host)?),
            _ => return Err(Problem::UnknownSetting(NAMES)),
        }
        Ok(())
    }

    /// Overlays `other` (higher precedence) on `self`, setting by setting.
    pub fn overlay(&mut self, other: &NetSettings) {
        pick(&mut self.interface, &other.interface);
        pick(&mut self.addresses, &other.addresses);
        pick(&mut self.gateways, &other.gateways);
        pick(&mut self.mtu, &other.mtu);
        pick(&mut self.nameservers, &other.nameservers);
        pick(&mut self.hosts, &other.hosts);
    }

    /// Whether the interface itself is to be configured (not only files).
    pub fn configures_interface(&self) -> bool {
        self.addresses.is_some() || self.gateways.is_some() || self.mtu.is_some()
    }

    /// The interface to configure.
    pub fn interface(&self) -> &str {
        self.interface.as_deref().unwrap_or(DEFAULT_INTERFACE)
    }

    /// A gateway outside every address's prefix, which the kernel could
    /// not reach (settings from different sources meet only here).
    pub fn unreachable_gateway(&self) -> Option<IpAddr> {
        let addresses = self.addresses.as_deref().unwrap_or_default();
        self.gateways
            .as_deref()
            .unwrap_or_default()
            .iter()
            // A link-local IPv6 router (fe80::1) is reachable on any link.
            .find(|gateway| {
                !is_link_local(**gateway) && !addresses.iter().any(|a| a.contains(**gateway))
            })
            .copied()
    }
}

impl Cidr {
    /// Whether `ip` is in this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |addr: IpAddr| match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 4),
            IpAddr::V6(a) => (u128::from(a), 6),
        };
        let ((net, family), (host, other)) = (bits(self.addr), bits(ip));
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        family == other && net & mask == host & mask
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

fn list<T>(value: &str, one: fn(&str) -> Result<T, Problem>) -> Result<Vec<T>, Problem> {
    value.split(',').map(one).collect()
}

/// An interface name: 1 to 15 bytes, no `/`, `:` or whitespace (dev_valid_name).
pub fn parse_interface(value: &str) -> Result<String, Problem> {
    let ok = !value.is_empty()
        && value.len() <= 15
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be an interface name: 1 to 15 bytes, no '/', ':' or spaces",
        ))
    }
}

fn parse_ip(value: &str) -> Result<IpAddr, Problem> {
    value.parse().map_err(|_| {
        Problem::BadSetting("must be IPv4 or IPv6 addresses separated by ',' (e.g. 10.0.2.3)")
    })
}

/// `ADDRESS/PREFIX`, IPv4 (prefix 0-32) or IPv6 (0-128).
fn parse_cidr(value: &str) -> Result<Cidr, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be ADDRESS/PREFIX, separated by ',' (e.g. 10.0.2.15/24,fec0::15/64)",
    );
    let (addr, prefix) = value.split_once('/').ok_or(RULE)?;
    let addr: IpAddr = addr.parse().map_err(|_| RULE)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix.parse::<u8>() {
        Ok(p) if p <= max && !prefix.starts_with('+') => p,
        _ => return Err(RULE),
    };
    if addr.is_unspecified() || addr.is_multicast() {
        return Err(RULE);
    }
    Ok(Cidr { addr, prefix })
}

/// At most one IPv4 and one IPv6 default gateway.
fn parse_gateways(value: &str) -> Result<Vec<IpAddr>, Problem> {
    let gateways = list(value, parse_ip)?;
    let v4 = gateways.iter().filter(|g| g.is_ipv4()).count();
    if v4 > 1 || gateways.len() - v4 > 1 {
        return Err(Problem::BadSetting(
            "must be at most one IPv4 and one IPv6 gateway, separated by ','",
        ));
    }
    Ok(gateways)
}

/// 68 (IPv4's minimum) to 65535.
fn parse_mtu(value: &str) -> Result<u32, Problem> {
    match value.parse::<u32>() {
        Ok(mtu) if (68..=65535).contains(&mtu) && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(mtu)
        }
        _ => Err(Problem::BadSetting("must be a number from 68 to 65535")),
    }
}

/// `NAME=ADDRESS`, the name a host name.
fn parse_host(value: &str) -> Result<(String, IpAddr), Problem> {
    const RULE: Problem =
        Problem::BadSetting("must be NAME=ADDRESS entries separated by ',' (e.g. db=10.0.2.20)");
    let (name, addr) = value.split_once('=').ok_or(RULE)?;
    let name = crate::config::validate::hostname(name).map_err(|_| RULE)?;
    Ok((name, addr.parse().map_err(|_| RULE)?))
}

/// The value as a comma-separated list again, for `--check`.
pub fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_configuration() {
        let mut low = NetSettings::default();
        low.set("address", "10.0.2.15/24,fec0::15/64").unwrap();
        low.set("gateway", "10.0.2.2,fec0::2").unwrap();
        low.set("mtu", "1400").unwrap();
        let mut high = NetSettings::default();
        high.set("interface", "ens3").unwrap();
        high.set("mtu", "9000").unwrap();
        low.overlay(&high);
        assert_eq!(low.interface(), "ens3");
        assert_eq!(low.mtu, Some(9000));
        assert_eq!(
            low.addresses.as_ref().unwrap()[1],
            Cidr {
                addr: "fec0::15".parse().unwrap(),
                prefix: 64
            }
        );
        assert!(low.configures_interface());
        assert_eq!(low.unreachable_gateway(), None);
        low.set("gateway", "10.0.3.1").unwrap();
        assert_eq!(low.unreachable_gateway(), Some("10.0.3.1".parse().unwrap()));
        low.set("gateway", "fe80::1").unwrap();
        assert_eq!(low.unreachable_gateway(), None);
        assert_eq!(NetSettings::default().interface(), "eth0");
    }

    #[test]
    fn bad_values_are_refused() {
        let mut net = NetSettings::default();
        for (name, bad) in [
            ("address", "10.0.2.15"),
            ("address", "10.0.2.15/33"),
            ("address", "fec0::1/129"),
            ("address", "10.0.2.15/+8"),
            ("address", "0.0.0.0/0"),
            ("address", "10.0.2.15/24,"),
            ("address", "host/24"),
            ("address", "10.0.2.15/24,10.0.3.15/24"),
            ("gateway", "10.0.2.2,10.0.2.3"),
            ("gateway", "fe80::1,fe80::2"),
            ("mtu", "67"),
            ("mtu", "65536"),
            ("mtu", "+1500"),
            ("nameservers", "1.1.1.1,8.8.8.8,9.9.9.9,1.0.0.1"),
            ("nameservers", "dns.example"),
            ("hosts", "db"),
            ("hosts", "db=10.0.0.300"),
            ("hosts", "bad_name=10.0.0.1"),
            ("interface", ""),
            ("interface", "a/b"),
            ("interface", "sixteen-bytes-xx"),
            ("colour", "red"),
        ] {
            assert!(net.set(name, bad).is_err(), "{name}={bad}");
        }
        assert_eq!(net, NetSettings::default());
    }

    #[test]
    fn prefixes_contain() {
        let cidr = |s: &str| parse_cidr(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr("10.0.2.15/24").contains(ip("10.0.2.2")));
        assert!(!cidr("10.0.2.15/24").contains(ip("10.0.3.2")));
        assert!(cidr("10.0.2.15/0").contains(ip("192.168.0.1")));
        assert!(!cidr("10.0.2.15/0").contains(ip("::1")));
        assert!(cidr("fec0::15/64").contains(ip("fec0::2")));
        assert!(cidr("10.0.2.15/32").contains(ip("10.0.2.15")));
    }
}
