//! One way out to the network for every HTTP request made on an admin's
//! say-so: Watson's service and IAM URLs (and their connection test) now,
//! webhooks and any later integration next. An admin's URL is called only
//! when
//! - it is `https://` (or `http://` where `egress_allow_http` is on);
//! - every address it leads to is public (no loopback, private, shared-NAT,
//!   link-local, unique-local, metadata, multicast, documentation or
//!   reserved address, however it is written), checked after DNS, unless
//!   the operator lists the host or address in `egress_allowed_hosts`;
//! - and then the connection goes to those checked addresses only: the
//!   name is resolved once, here, and the client is pinned to the answer,
//!   so DNS cannot hand out another address between check and connect.
//!
//! No redirect is followed (a redirect could lead anywhere), no proxy is
//! used (it would resolve the name itself), and every exchange is bounded
//! in time and in the size of the answer. What is refused says what and
//! why; nothing of a refused service's answer ever reaches the admin,
//! because nothing is sent to it.
//!
//! URLs from the operator's own configuration (SendGrid, S3, the database,
//! Redis) do not come through here: see `docs/decisions.md`.

mod client;
mod ip_net;
mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use client::{Answer, Egress, Limits};
pub use ip_net::IpNet;
pub use ranges::{Special, special};

use crate::adapter::BoxFuture;
use crate::connect_failure::Failure;

/// What every refusal of an internal address ends with: what to do.
const LIST_IT: &str =
    "Careline does not call internal addresses unless `egress_allowed_hosts` lists it";

/// Why an admin's request went nowhere, in words for that admin. None of
/// them quotes the text of the service that was (or was not) called.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The policy refused before anything was sent: no connection made.
    #[error("{0}")]
    Refused(String),
    /// The service could not be reached (DNS, nothing listening, TLS…).
    #[error("cannot reach {host}: {failure}")]
    Unreachable { host: String, failure: Failure },
    #[error("{host} did not answer within {}", seconds(*.after))]
    TimedOut { host: String, after: Duration },
    #[error("{host}'s answer is larger than {limit} bytes; it was not read")]
    TooLarge { host: String, limit: usize },
    #[error(
        "{host} answered {status}, a redirect; Careline follows no redirects \
         (enter the address the service's documentation gives)"
    )]
    Redirected {
        host: String,
        status: reqwest::StatusCode,
    },
    /// The request itself could not be built (a header that is not valid).
    #[error("the request could not be made: {0}")]
    Request(String),
}

impl EgressError {
    /// Refused by the policy: trying again changes nothing.
    pub fn is_refused(&self) -> bool {
        matches!(self, EgressError::Refused(_))
    }

    /// A failure that may pass (the service down or slow), worth a retry.
    pub fn may_pass(&self) -> bool {
        matches!(
            self,
            EgressError::Unreachable { .. } | EgressError::TimedOut { .. }
        )
    }
}

fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// The names a host is looked up by. The system's resolver in production;
/// a caller may give another (`Adapters::dns`) whose answers are checked
/// exactly the same way.
pub trait Dns: Send + Sync + 'static {
    /// The addresses of `name` (never an IP literal).
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS).
pub struct SystemDns;

impl Dns for SystemDns {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((name, port)).await?.collect()) })
    }
}

/// One entry of `egress_allowed_hosts`: a host or address an install
/// really needs to call although it is internal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// A host name exactly (`watson.internal`), on one port or on any:
    /// every address it resolves to is allowed.
    Name { name: String, port: Option<u16> },
    /// An address or range (`10.20.0.5`, `10.20.0.0/16`,
    /// `[fd00::5]:8443`), on one port or on any.
    Net { net: IpNet, port: Option<u16> },
}

impl Allowed {
    /// Reads one entry; the error says what an entry looks like.
    pub fn parse(entry: &str) -> Result<Allowed, String> {
        let entry = entry.trim();
        let bad = || {
            format!(
                "`{entry}` is not a host name, an address or a range \
                 (like watson.internal:8443, 10.20.0.5, 10.20.0.0/16 or [fd00::5]:8443)"
            )
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad);
        if let Some(rest) = entry.strip_prefix('[') {
            let (address, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                after => Some(port(after.strip_prefix(':').ok_or_else(bad)?)?),
            };
            let net = IpNet::parse(address).filter(|_| address.contains(':'));
            return Ok(Allowed::Net {
                net: net.ok_or_else(bad)?,
                port,
            });
        }
        if entry.contains('/') || entry.matches(':').count() > 1 {
            let net = IpNet::parse(entry).ok_or_else(bad)?;
            return Ok(Allowed::Net { net, port: None });
        }
        let (host, port) = match entry.split_once(':') {
            Some((host, p)) => (host, Some(port(p)?)),
            None => (entry, None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let net = IpNet::parse(&ip.to_string()).ok_or_else(bad)?;
            return Ok(Allowed::Net { net, port });
        }
        let name = normal_name(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(Allowed::Name { name, port })
    }

    fn port_matches(port: Option<u16>, wanted: u16) -> bool {
        port.is_none_or(|p| p == wanted)
    }
}

/// A host name as entries and URLs are compared: lower case, without the
/// trailing dot of a fully qualified name.
fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The rules for calls made on an admin's say-so, from the settings
/// `egress_allow_http` and `egress_allowed_hosts`.
#[derive(Clone)]
pub struct Policy {
    allow_http: bool,
    allowed: Arc<[Allowed]>,
    dns: Arc<dyn Dns>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allow_http", &self.allow_http)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Default for Policy {
    /// `https://` to public addresses only.
    fn default() -> Policy {
        Policy::new(false, Vec::new())
    }
}

/// Where a checked URL goes.
pub(crate) struct Target {
    url: reqwest::Url,
    /// The host as the URL spells it (`host_str`), for pinning.
    host: String,
    /// The host is a name to resolve (not an IP literal).
    is_name: bool,
    port: u16,
    /// The operator listed this name (and port): all its addresses go.
    listed: bool,
}

impl Policy {
    pub fn new(allow_http: bool, allowed: Vec<Allowed>) -> Policy {
        Policy {
            allow_http,
            allowed: allowed.into(),
            dns: Arc::new(SystemDns),
        }
    }

    /// The same rules, looking names up with `dns`.
    pub fn with_dns(mut self, dns: Arc<dyn Dns>) -> Policy {
        self.dns = dns;
        self
    }

    /// A client for calls under this policy, within `limits`.
    pub fn client(&self, limits: Limits) -> Egress {
        Egress::new(self.clone(), limits)
    }

    /// What can be known of `url` without looking its name up: the
    /// scheme, and an address or `localhost` written in it. For forms, so
    /// that an admin hears at once; every call checks again, after DNS.
    pub fn check(&self, url: &str) -> Result<(), EgressError> {
        self.target(url).map(|_| ())
    }

    /// The addresses a connection to `host:port` that is not HTTP (the
    /// support mailbox over IMAP) may go to, by the same rules: an
    /// internal address is refused unless listed, a name is looked up once
    /// and only its allowed answers are returned, to connect to.
    pub async fn socket_addresses(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let bracketed = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{host}]"),
            _ => host.to_string(),
        };
        let target = self.target(&format!("https://{bracketed}:{port}/"))?;
        if target.is_name {
            return self.addresses(&target).await;
        }
        let ip = target
            .host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map_err(|_| EgressError::Refused(format!("`{host}` is not a host")))?;
        Ok(vec![SocketAddr::new(ip, port)])
    }

    pub(crate) fn target(&self, url: &str) -> Result<Target, EgressError> {
        let refused = |why: String| Err(EgressError::Refused(why));
        let Ok(url) = reqwest::Url::parse(url.trim()) else {
            return refused(format!("`{url}` is not a URL like https://host/path"));
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return refused(
                    "http:// is not allowed: Careline calls https:// URLs \
                     (an operator may allow http:// with `egress_allow_http`)"
                        .into(),
                );
            }
            other => {
                return refused(format!(
                    "{other}: URLs are not allowed: Careline calls https:// URLs only"
                ));
            }
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return refused(format!("`{url}` names no host"));
        };
        let (is_name, listed) = match host {
            url::Host::Domain(name) => {
                let name = normal_name(name);
                let listed = self.allowed.iter().any(|a| {
                    matches!(a, Allowed::Name { name: n, port: p }
                        if *n == name && Allowed::port_matches(*p, port))
                });
                // RFC 6761: these names are this machine, whatever DNS says.
                if !listed && (name == "localhost" || name.ends_with(".localhost")) {
                    return refused(format!(
                        "{name} is {}; {LIST_IT}",
                        Special::Loopback.describe()
                    ));
                }
                (true, listed)
            }
            url::Host::Ipv4(ip) => (false, self.judge(ip.into(), port, None)?),
            url::Host::Ipv6(ip) => (false, self.judge(ip.into(), port, None)?),
        };
        let host = url.host_str().unwrap_or_default().to_string();
        Ok(Target {
            url,
            host,
            is_name,
            port,
            listed,
        })
    }

    /// Whether `ip` may be called on `port`: listed, or public. `name` is
    /// the name it was found under, for the words of a refusal.
    fn judge(&self, ip: IpAddr, port: u16, name: Option<&str>) -> Result<bool, EgressError> {
        let listed = self.allowed.iter().any(|a| {
            matches!(a, Allowed::Net { net, port: p }
                if net.contains(ip) && Allowed::port_matches(*p, port))
        });
        match special(ip) {
            Some(kind) if !listed => Err(EgressError::Refused(match name {
                Some(name) => format!("{name} resolves to {ip}, {}; {LIST_IT}", kind.describe()),
                None => format!("{ip} is {}; {LIST_IT}", kind.describe()),
            })),
            _ => Ok(listed),
        }
    }

    /// The addresses a call to `target` may connect to: its name looked
    /// up once, each answer judged, the refused ones dropped. An IP literal
    /// was judged already and needs none.
    pub(crate) async fn addresses(&self, target: &Target) -> Result<Vec<SocketAddr>, EgressError> {
        if !target.is_name {
            return Ok(Vec::new());
        }
        let name = normal_name(&target.host);
        let found = self
            .dns
            .lookup(&target.host, target.port)
            .await
            .unwrap_or_default();
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        for address in found {
            let address = SocketAddr::new(address.ip(), target.port);
            match self.judge(address.ip(), target.port, Some(&name)) {
                Ok(_) => allowed.push(address),
                Err(_) if target.listed => allowed.push(address),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        allowed.sort();
        allowed.dedup();
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(EgressError::Unreachable {
                host: target.host.clone(),
                failure: Failure::Dns,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str, port: Option<u16>) -> Allowed {
        Allowed::Net {
            net: IpNet::parse(s).unwrap(),
            port,
        }
    }

    #[test]
    fn allow_list_entries_are_names_addresses_and_ranges_with_or_without_a_port() {
        let name = |n: &str, port| Allowed::Name {
            name: n.into(),
            port,
        };
        let cases = [
            ("watson.internal:8443", name("watson.internal", Some(8443))),
            ("Watson.Internal.", name("watson.internal", None)),
            ("10.20.0.5", net("10.20.0.5", None)),
            ("127.0.0.1:8080", net("127.0.0.1", Some(8080))),
            ("10.20.0.0/16", net("10.20.0.0/16", None)),
            ("fd00::5", net("fd00::5", None)),
            ("fd00::/8", net("fd00::/8", None)),
            ("[fd00::5]:8443", net("fd00::5", Some(8443))),
            ("[::1]", net("::1", None)),
        ];
        for (entry, expected) in cases {
            assert_eq!(Allowed::parse(entry), Ok(expected), "{entry}");
        }
        for bad in [
            "",
            "https://watson.internal",
            "watson.internal:0",
            "watson.internal:99999",
            "watson internal",
            "10.0.0.0/33",
            "[10.0.0.1]:80",
            "[fd00::5]8443",
            "a..b",
        ] {
            let err = Allowed::parse(bad).expect_err(bad);
            assert!(err.contains("like watson.internal:8443"), "{err}");
        }
    }

    fn refusal(policy: &Policy, url: &str) -> String {
        match policy.check(url) {
            Err(EgressError::Refused(why)) => why,
            other => panic!("{url} was not refused: {other:?}"),
        }
    }

    #[test]
    fn only_https_unless_http_is_allowed_and_never_another_scheme() {
        let strict = Policy::default();
        assert!(strict.check("https://api.example.com/x").is_ok());
        assert!(refusal(&strict, "http://api.example.com/").contains("`egress_allow_http`"));
        let relaxed = Policy::new(true, Vec::new());
        assert!(relaxed.check("http://api.example.com/").is_ok());
        for url in [
            "file:///etc/passwd",
            "gopher://127.0.0.1:70/_x",
            "ftp://example.com/",
            "data:text/plain,x",
        ] {
            let why = refusal(&relaxed, url);
            assert!(why.contains("URLs are not allowed"), "{url}: {why}");
        }
        assert!(refusal(&relaxed, "not a url").contains("is not a URL"));
    }

    #[test]
    fn written_addresses_are_refused_however_they_are_spelled() {
        let policy = Policy::new(true, Vec::new());
        for url in [
            "https://127.0.0.1/",
            "https://127.1:8443/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
        ] {
            let why = refusal(&policy, url);
            assert!(why.contains("is a loopback address"), "{url}: {why}");
            assert!(why.ends_with(LIST_IT), "{url}: {why}");
        }
        assert!(refusal(&policy, "https://169.254.169.254/latest/").contains("metadata"));
        assert!(refusal(&policy, "https://[fd00:ec2::254]/").contains("metadata"));
        assert!(refusal(&policy, "https://0.0.0.0/").contains("unspecified"));
        assert!(refusal(&policy, "https://10.1.2.3/").contains("private"));
        assert!(refusal(&policy, "https://[fe80::1]/").contains("link-local"));
        assert!(policy.check("https://93.184.215.14/").is_ok());
    }

    #[test]
    fn a_listed_address_or_name_is_allowed_on_its_port_only() {
        let policy = Policy::new(
            false,
            vec![
                Allowed::parse("127.0.0.1:8443").unwrap(),
                Allowed::parse("10.20.0.0/16").unwrap(),
                Allowed::parse("watson.localhost:8443").unwrap(),
            ],
        );
        assert!(policy.check("https://127.0.0.1:8443/").is_ok());
        assert!(policy.check("https://[::ffff:127.0.0.1]:8443/").is_ok());
        assert!(refusal(&policy, "https://127.0.0.1:8444/").contains("loopback"));
        assert!(policy.check("https://10.20.99.1:22/").is_ok());
        assert!(refusal(&policy, "https://10.21.0.1/").contains("private"));
        assert!(policy.check("https://watson.localhost:8443/").is_ok());
        assert!(refusal(&policy, "https://watson.localhost/").contains("loopback"));
    }

    /// A resolver with fixed answers.
    struct Fixed(Vec<IpAddr>);

    impl Dns for Fixed {
        fn lookup<'a>(
            &'a self,
            _: &'a str,
            port: u16,
        ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            let found = self.0.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            Box::pin(async move { Ok(found) })
        }
    }

    async fn resolved(policy: &Policy, url: &str) -> Result<Vec<SocketAddr>, EgressError> {
        policy.addresses(&policy.target(url)?).await
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let ips = |list: &[&str]| list.iter().map(|ip| ip.parse().unwrap()).collect();
        let inside = Policy::default().with_dns(Arc::new(Fixed(ips(&["127.0.0.1", "::1"]))));
        let why = resolved(&inside, "https://rebind.example.com/")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            why,
            format!("rebind.example.com resolves to 127.0.0.1, a loopback address; {LIST_IT}")
        );
        // Mixed answers: only the public address is kept, and pinned.
        let mixed = Policy::default().with_dns(Arc::new(Fixed(ips(&["10.0.0.1", "1.1.1.1"]))));
        assert_eq!(
            resolved(&mixed, "https://mixed.example.com/")
                .await
                .unwrap(),
            vec!["1.1.1.1:443".parse().unwrap()]
        );
        // A listed name keeps its internal addresses, on its port.
        let listed = Policy::new(false, vec![Allowed::parse("watson.corp:8443").unwrap()])
            .with_dns(Arc::new(Fixed(ips(&["10.0.0.7"]))));
        assert_eq!(
            resolved(&listed, "https://watson.corp:8443/")
                .await
                .unwrap(),
            vec!["10.0.0.7:8443".parse().unwrap()]
        );
        assert!(
            resolved(&listed, "https://watson.corp/")
                .await
                .unwrap_err()
                .is_refused()
        );
        let nothing = Policy::default().with_dns(Arc::new(Fixed(Vec::new())));
        let err = resolved(&nothing, "https://nowhere.example.com/")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not resolve"), "{err}");
    }
}
