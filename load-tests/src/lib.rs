//! Careline's load generator: widgets and agents speaking the real protocol
//! over real sockets, measuring what users feel (see `load-tests/README.md`).
//!
//! Loopback only: every address it talks to is a `SocketAddr` the caller
//! gives, normally `127.0.0.1:<port>`.

pub mod chat;
pub mod http;
pub mod idle;
pub mod procfs;
pub mod report;
pub mod sio;
pub mod socket;
pub mod storm;

use std::net::SocketAddr;

/// The Careline instance (or the nginx in front of several) under load.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Origin` the widgets send: an allowed origin of the site, or
    /// Careline's own (`public_url`).
    pub origin: String,
    pub site_key: String,
}

/// What a scenario drives beyond one Careline instance.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Agents connect (and log in) here instead of [`Target::addr`]: another
    /// instance, so that every message crosses the bus.
    pub agent_addr: Option<SocketAddr>,
    pub protocol: Protocol,
    /// The server processes (one per instance), to read their memory and
    /// CPU from /proc; figures are their sums.
    pub server_pids: Vec<u32>,
    /// `chat`: messages sent this soon after the start are not measured
    /// (latency, throughput), only checked for loss: customers arriving
    /// and being assigned is not the steady state.
    pub warmup: std::time::Duration,
    /// `chat`: measure only what was sent once every conversation is live
    /// (and after `warmup`): the steady state, without the arrivals.
    pub steady: bool,
}

/// Which server the clients speak to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Careline's own WebSocket protocol (docs/protocol.md).
    #[default]
    Careline,
    /// The Socket.IO 4 peer in `load-tests/peer/` (see [`sio`]).
    SocketIo,
}

impl Target {
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Client source addresses 127.0.0.2 … 127.0.0.(1 + spread): each has its
/// own ephemeral ports and its own rate-limit budget.
pub fn local_ip(i: usize, spread: usize) -> std::net::IpAddr {
    let n = 2 + (i % spread.clamp(1, 250)) as u8;
    std::net::IpAddr::from([127, 0, 0, n])
}
