//! The client's IP address, for rate limits and logs. `X-Forwarded-For` is
//! believed only when the TCP peer is a configured trusted proxy, so a
//! client talking to Careline directly cannot pick its own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Request;
use tower_governor::GovernorError;
use tower_governor::key_extractor::KeyExtractor;

use crate::config::IpNet;

/// Resolves client addresses against the trusted proxy list.
#[derive(Debug, Clone)]
pub struct ClientIp {
    trusted: std::sync::Arc<Vec<IpNet>>,
}

impl ClientIp {
    pub fn new(trusted: Vec<IpNet>) -> ClientIp {
        ClientIp {
            trusted: std::sync::Arc::new(trusted),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// Walks `X-Forwarded-For` from the right (the entry our own proxy
    /// added) past trusted proxies; the first untrusted address is the client.
    pub fn resolve(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for entry in header.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                // A garbled entry: stop at the last address we could trust.
                Err(_) => break,
            }
        }
        client
    }

    pub fn from_request<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())?;
        Some(self.from_headers(peer, request.headers()))
    }

    /// The client of a request from `peer` with these headers.
    pub fn from_headers(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        self.resolve(peer, (!forwarded.is_empty()).then_some(forwarded.as_str()))
    }
}

/// The rate-limit key of an address: IPv6 clients usually hold a whole /64,
/// so one /64 shares one budget.
pub fn rate_limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, GovernorError> {
        self.from_request(request)
            .map(rate_limit_key)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2:ffff::9")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            rate_limit_key(ip("::ffff:198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(rate_limit_key(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn untrusted_peers_cannot_spoof_their_address() {
        let resolver = ClientIp::new(vec![]);
        assert_eq!(
            resolver.resolve(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxy_chain_yields_the_first_untrusted_address() {
        let resolver = ClientIp::new(vec![IpNet::parse("10.0.0.0/8").unwrap()]);
        // The client sent its own fake header; our proxies appended the real one.
        let header = "6.6.6.6, 198.51.100.7, 10.0.0.3";
        assert_eq!(
            resolver.resolve(ip("10.0.0.2"), Some(header)),
            ip("198.51.100.7")
        );
        assert_eq!(resolver.resolve(ip("10.0.0.2"), None), ip("10.0.0.2"));
        assert_eq!(
            resolver.resolve(ip("10.0.0.2"), Some("garbage")),
            ip("10.0.0.2")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_ip() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u8; 16]>().prop_map(IpAddr::from),
            ]
        }

        /// Headers made of addresses, garbage and odd separators, as an
        /// attacker would forge them.
        fn any_header() -> impl Strategy<Value = String> {
            let entry = prop_oneof![
                any_ip().prop_map(|ip| ip.to_string()),
                Just("10.0.0.7".to_string()),
                "[ -~]{0,20}",
            ];
            proptest::collection::vec(entry, 0..6).prop_map(|parts| parts.join(","))
        }

        proptest! {
            #[test]
            fn an_untrusted_peer_is_always_its_own_address(peer in any_ip(), header in any_header()) {
                let resolver = ClientIp::new(vec![IpNet::parse("10.0.0.0/8").unwrap()]);
                prop_assume!(!resolver.is_trusted(peer));
                prop_assert_eq!(resolver.resolve(peer, Some(&header)), peer);
            }

            #[test]
            fn behind_a_trusted_proxy_the_answer_is_the_peer_or_named_in_the_header(
                header in any_header(),
            ) {
                let resolver = ClientIp::new(vec![IpNet::parse("10.0.0.0/8").unwrap()]);
                let peer = ip("10.0.0.2");
                let client = resolver.resolve(peer, Some(&header));
                let named = header
                    .split(',')
                    .filter_map(|e| e.trim().parse::<IpAddr>().ok())
                    .any(|ip| ip == client);
                prop_assert!(client == peer || named, "{client} from {header:?}");
            }
        }
    }
}
