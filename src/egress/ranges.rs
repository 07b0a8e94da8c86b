//! Which addresses are not "out on the internet": this machine, the local
//! networks, the cloud's metadata service, and the ranges that are never
//! routed publicly. An admin-set URL that leads to one of them is refused
//! (unless the operator lists it), whether it was written as a literal,
//! encoded (`2130706433`, `0x7f000001`), wrapped in IPv6 (`::ffff:127.0.0.1`,
//! NAT64, 6to4) or reached through a name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use super::IpNet;

/// A kind of address Careline does not call on an admin's say-so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `0.0.0.0/8`, `::`: "this host", which connects to this machine.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and IPv6 site-local.
    Private,
    /// `100.64.0.0/10`, shared address space (carrier-grade NAT).
    SharedNat,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud's instance metadata service (credentials live there).
    Metadata,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// RFC 5737 / RFC 3849 / RFC 9637 examples, never on the internet.
    Documentation,
    /// `198.18.0.0/15`, for benchmarking networks.
    Benchmarking,
    /// Reserved or special-purpose (`240/4`, broadcast, `192.0.0.0/24`,
    /// IPv4-compatible IPv6, discard-only, IETF protocol assignments).
    Reserved,
}

impl Special {
    /// The kind in words, after "is" ("127.0.0.1 is a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            Special::Unspecified => "an unspecified address (it reaches this machine)",
            Special::Loopback => "a loopback address",
            Special::Private => "a private address",
            Special::SharedNat => "a carrier-grade NAT address",
            Special::LinkLocal => "a link-local address",
            Special::Metadata => "a cloud metadata address",
            Special::UniqueLocal => "a unique-local address",
            Special::Multicast => "a multicast address",
            Special::Documentation => "a documentation address",
            Special::Benchmarking => "a benchmarking address",
            Special::Reserved => "a reserved address",
        }
    }
}

/// The ranges, most specific first: the first that holds an address
/// names its kind (the metadata addresses sit inside link-local,
/// unique-local and shared-NAT ranges; `::` and `::1` inside `::/96`).
static RANGES: LazyLock<Vec<(IpNet, Special)>> = LazyLock::new(|| {
    use Special::*;
    [
        // AWS, GCP, Azure, OpenStack, DigitalOcean…
        ("169.254.169.254", Metadata),
        // AWS over IPv6.
        ("fd00:ec2::254", Metadata),
        // Alibaba Cloud.
        ("100.100.100.200", Metadata),
        ("0.0.0.0/8", Unspecified),
        ("10.0.0.0/8", Private),
        ("100.64.0.0/10", SharedNat),
        ("127.0.0.0/8", Loopback),
        ("169.254.0.0/16", LinkLocal),
        ("172.16.0.0/12", Private),
        ("192.0.0.0/24", Reserved),
        ("192.0.2.0/24", Documentation),
        ("192.88.99.0/24", Reserved),
        ("192.168.0.0/16", Private),
        ("198.18.0.0/15", Benchmarking),
        ("198.51.100.0/24", Documentation),
        ("203.0.113.0/24", Documentation),
        ("224.0.0.0/4", Multicast),
        // Includes 255.255.255.255, the broadcast address.
        ("240.0.0.0/4", Reserved),
        ("::", Unspecified),
        ("::1", Loopback),
        // IPv4-compatible IPv6 (deprecated).
        ("::/96", Reserved),
        ("100::/64", Reserved),
        ("2001::/23", Reserved),
        ("2001:db8::/32", Documentation),
        ("3fff::/20", Documentation),
        ("64:ff9b:1::/48", Reserved),
        ("fc00::/7", UniqueLocal),
        ("fe80::/10", LinkLocal),
        ("fec0::/10", Private),
        ("ff00::/8", Multicast),
    ]
    .into_iter()
    .map(|(net, kind)| (IpNet::parse(net).expect("the table's ranges parse"), kind))
    .collect()
});

/// The IPv4 address an IPv6 address carries and that a connection to it
/// ends up at: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`)
/// or 6to4 (`2002:AABB:CCDD::…`).
fn carried_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

/// What kind of special address `ip` is; `None` for a public one.
pub fn special(ip: IpAddr) -> Option<Special> {
    let ip = match ip {
        IpAddr::V6(v6) => carried_ipv4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    RANGES
        .iter()
        .find(|(net, _)| net.contains(ip))
        .map(|&(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::Special::*;
    use super::*;

    fn kind(ip: &str) -> Option<Special> {
        special(ip.parse().unwrap_or_else(|_| panic!("{ip} parses")))
    }

    #[test]
    fn ipv4_ranges_are_named_at_both_ends() {
        let cases = [
            ("0.0.0.0", Some(Unspecified)),
            ("0.255.255.255", Some(Unspecified)),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("100.63.255.255", None),
            ("100.64.0.0", Some(SharedNat)),
            ("100.127.255.255", Some(SharedNat)),
            ("100.128.0.0", None),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(Metadata)),
            ("169.254.169.253", Some(LinkLocal)),
            ("100.100.100.200", Some(Metadata)),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("192.88.99.1", Some(Reserved)),
            ("192.167.255.255", None),
            ("192.168.0.0", Some(Private)),
            ("192.168.255.255", Some(Private)),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.0", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("223.255.255.255", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.255", Some(Reserved)),
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges_are_named() {
        let cases = [
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::2", Some(Reserved)),
            ("::127.0.0.1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("2001::1", Some(Reserved)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("64:ff9b:1::1", Some(Reserved)),
            ("fc00::1", Some(UniqueLocal)),
            ("fdff:ffff::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(Metadata)),
            ("fd00:ec2::253", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf:ffff::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
            ("2a00:1450:4001::1", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_that_carries_ipv4_is_judged_by_the_ipv4_inside() {
        let cases = [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(Metadata)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            // NAT64: the translator connects to the IPv4 address inside.
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::192.168.1.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
            // 6to4: 2002:AABB:CCDD:: carries AA.BB.CC.DD.
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:a9fe:a9fe::", Some(Metadata)),
            ("2002:808:808::1", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), expected, "{ip}");
        }
    }
}
