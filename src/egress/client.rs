//! The client that makes the calls the policy allows. Each host (and
//! port) gets its own reqwest client pinned to the addresses that were
//! checked: it cannot resolve anything itself, so what it connects to is
//! what was judged. A pinned client is kept for [`PIN_FOR`], so calls in
//! a row reuse their connection, then the name is looked up and judged
//! again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{EgressError, Policy, Target};
use crate::connect_failure::{Failure, classify};

/// How long one lookup's checked answer is used.
const PIN_FOR: Duration = Duration::from_secs(30);
/// Hosts with a pinned client at most, per [`Egress`].
const MAX_PINNED: usize = 32;
/// Longest wait for a connection, within the exchange's own limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounds of every exchange of a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the start (the lookup included) to the answer's last byte.
    pub timeout: Duration,
    /// A longer answer is not read.
    pub max_answer_bytes: usize,
}

/// A service's answer, read whole within the limits.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

struct Pinned {
    addresses: Vec<SocketAddr>,
    client: reqwest::Client,
    at: Instant,
}

/// Calls admin-given URLs under a [`Policy`], within [`Limits`].
pub struct Egress {
    policy: Policy,
    limits: Limits,
    pinned: Mutex<HashMap<(String, u16), Pinned>>,
}

impl Egress {
    pub(super) fn new(policy: Policy, limits: Limits) -> Egress {
        Egress {
            policy,
            limits,
            pinned: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `method` to `url`, the request completed by `build` (headers,
    /// query, body), if the policy allows it; the answer read whole. A
    /// redirect is an error, never followed.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, EgressError> {
        let target = self.policy.target(url)?;
        let timeout = self.limits.timeout;
        match tokio::time::timeout(timeout, self.exchange(&target, method, build)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(EgressError::TimedOut {
                host: target.host.clone(),
                after: timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        target: &Target,
        method: reqwest::Method,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, EgressError> {
        let client = self.client_for(target).await?;
        let request = build(client.request(method, target.url.clone()))
            .build()
            .map_err(|e| EgressError::Request(e.to_string()))?;
        // `build` may add a query, not go elsewhere.
        if request.url().host_str() != Some(target.host.as_str())
            || request.url().port_or_known_default() != Some(target.port)
        {
            return Err(EgressError::Refused(
                "the request's address changed after it was checked".into(),
            ));
        }
        let host = || target.host.clone();
        let mut response = client
            .execute(request)
            .await
            .map_err(|e| self.failed(target, e))?;
        let status = response.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Err(EgressError::Redirected {
                host: host(),
                status,
            });
        }
        let limit = self.limits.max_answer_bytes;
        let too_large = || EgressError::TooLarge {
            host: host(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(target, e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers: response.headers().clone(),
            body: body.freeze(),
        })
    }

    fn failed(&self, target: &Target, error: reqwest::Error) -> EgressError {
        if error.is_timeout() {
            return EgressError::TimedOut {
                host: target.host.clone(),
                after: self.limits.timeout,
            };
        }
        let failure = match classify(&error) {
            // The deepest cause says it best ("connection reset by peer").
            Failure::Other(_) => Failure::Other(innermost(&error)),
            failure => failure,
        };
        EgressError::Unreachable {
            host: target.host.clone(),
            failure,
        }
    }

    /// The client pinned to `target`'s checked addresses: the one kept
    /// while its lookup is fresh, else a new lookup, judged.
    async fn client_for(&self, target: &Target) -> Result<reqwest::Client, EgressError> {
        let key = (target.host.clone(), target.port);
        if let Some(pinned) = self.pinned.lock().expect("pinned lock").get(&key)
            && pinned.at.elapsed() < PIN_FOR
        {
            return Ok(pinned.client.clone());
        }
        let addresses = self.policy.addresses(target).await?;
        let mut pinned = self.pinned.lock().expect("pinned lock");
        if let Some(same) = pinned.get_mut(&key)
            && same.addresses == addresses
        {
            same.at = Instant::now();
            return Ok(same.client.clone());
        }
        let client = pinned_client(target, &addresses, &self.limits)?;
        if pinned.len() >= MAX_PINNED
            && let Some(oldest) = pinned
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
        {
            pinned.remove(&oldest);
        }
        pinned.insert(
            key,
            Pinned {
                addresses,
                client: client.clone(),
                at: Instant::now(),
            },
        );
        Ok(client)
    }
}

/// A client that connects to `addresses` for `target`'s name (or to its
/// IP literal) and nowhere else.
fn pinned_client(
    target: &Target,
    addresses: &[SocketAddr],
    limits: &Limits,
) -> Result<reqwest::Client, EgressError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls().clone())
        // A proxy would look the name up itself, past the check.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        // Any name but the pinned one fails to resolve.
        .dns_resolver(Arc::new(NoLookups))
        .connect_timeout(limits.timeout.min(CONNECT_TIMEOUT))
        .timeout(limits.timeout)
        .pool_idle_timeout(PIN_FOR);
    if target.is_name {
        builder = builder.resolve_to_addrs(&target.host, addresses);
    }
    builder
        .build()
        .map_err(|e| EgressError::Request(e.to_string()))
}

/// The resolver of a pinned client: it resolves nothing.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            Err(format!("{name} was not looked up and checked by the egress policy").into())
        })
    }
}

/// TLS for every egress client: rustls with ring and the system's roots,
/// as everywhere else in Careline; made once.
fn tls() -> &'static rustls::ClientConfig {
    static TLS: OnceLock<rustls::ClientConfig> = OnceLock::new();
    TLS.get_or_init(|| {
        crate::adapter::install_tls();
        let native = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::warn!(
                errors = ?native.errors,
                "no CA certificates found on this system: calls to https:// URLs will fail"
            );
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // reqwest is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    })
}

/// The text of the last error in `error`'s chain of causes.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
