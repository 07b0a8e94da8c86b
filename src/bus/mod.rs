//! The bus: how one instance tells every instance (itself included) that
//! something happened in a conversation. Fan-out always goes through it,
//! even on one node, so that adding instances changes the adapter, not the
//! code.
//!
//! The bus may lose messages (design §3.6): the database is the truth, and
//! after any loss subscribers are told to resume ([`BusEvent::Resync`]).

mod local;
mod redis;
mod topic;

use std::time::Duration;

use tokio::sync::mpsc;

pub use local::{LocalBroker, LocalBus};
pub use redis::RedisBus;
pub use topic::{Envelope, Topic};

pub use crate::adapter::BoxFuture;

/// What an instance receives from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// An envelope published on a topic this instance subscribes to.
    Message { topic: Topic, envelope: Envelope },
    /// Messages may have been lost (reconnect, overflow): everyone subscribed
    /// to these topics must resume from the database.
    Resync { topics: Vec<Topic> },
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// The first connection failed, for this reason.
    #[error("{0}")]
    Unreachable(crate::connect_failure::Failure),
}

/// One instance's connection to the bus. Each instance calls [`Bus::events`]
/// once and reads everything it subscribed to from that one stream.
pub trait Bus: Send + Sync + 'static {
    /// Publishes `envelope` to every instance subscribed to `topic`.
    fn publish(&self, topic: Topic, envelope: Envelope) -> BoxFuture<'_, Result<(), BusError>>;

    /// Starts delivering `topic` to this instance. Idempotent.
    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>>;

    /// Stops delivering `topic`. Idempotent.
    fn unsubscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>>;

    /// The instance's event stream; `None` after the first call.
    fn events(&self) -> Option<mpsc::Receiver<BusEvent>>;

    /// Whether a publish would be delivered now (for `/readyz`).
    fn is_connected(&self) -> bool;

    fn name(&self) -> &'static str;

    /// Times the connection to the bus was re-established (for /metrics).
    fn reconnects(&self) -> u64 {
        0
    }

    /// Counts one event under `key` in a window of `window` that every
    /// instance on this bus shares, and returns the count so far in the
    /// window and the time until it ends (for limits that a load balancer
    /// spreading requests over instances must not multiply). `None`: this
    /// bus is one process alone, whose own limiters see everything.
    fn count_in_window<'a>(
        &'a self,
        _key: &'a str,
        _window: Duration,
    ) -> BoxFuture<'a, Result<Option<(u64, Duration)>, BusError>> {
        Box::pin(async { Ok(None) })
    }
}
