//! The Redis pub/sub bus, for several instances. Each instance keeps one
//! subscriber connection (all its topics multiplexed on it, subscribed and
//! unsubscribed as local interest comes and goes) and publishes through one
//! managed, pipelined connection.
//!
//! Redis pub/sub may lose messages (a disconnect, a slow subscriber cut off
//! by Redis). The database is the truth: after every reconnect the instance
//! resubscribes and emits [`BusEvent::Resync`] for all its topics, so every
//! client resumes from the database and nothing is lost for anyone.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use tokio::sync::mpsc;

use super::{BoxFuture, Bus, BusError, BusEvent, Envelope, Topic};
use crate::connect_failure::{self, Failure};

/// Channels are namespaced, so that Careline can share a Redis server.
const PREFIX: &str = "careline:";
const EVENT_QUEUE: usize = 4096;

/// What arrived on `topic` as the instance needs it. Between instances a
/// payload is the frame alone, as it always was, so that instances of the
/// previous release and of this one share Redis during a rolling update.
/// On an agent's topic every frame is an assignment (a `conversation`
/// frame): the conversation to follow is read back from it here, at the
/// edge, and never by the hub.
fn envelope_of(topic: Topic, payload: &str) -> Envelope {
    #[derive(serde::Deserialize)]
    struct Assigned<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        id: &'a str,
    }
    let frame: Arc<str> = Arc::from(payload);
    let assigned = match topic {
        Topic::Agent(_) => serde_json::from_str::<Assigned>(payload)
            .ok()
            .filter(|a| a.kind == "conversation")
            .and_then(|a| a.id.parse().ok()),
        _ => None,
    };
    match assigned {
        Some(conversation) => Envelope::assignment(frame, conversation),
        None => Envelope::frame(frame),
    }
}

/// The Redis channel of `topic`.
fn channel(topic: Topic) -> String {
    format!("{PREFIX}{topic}")
}
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the subscriber connection is checked with a PING.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// A subscription command that takes longer means a dead connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

struct Shared {
    /// Topics this instance wants, whether or not Redis is reachable now.
    wanted: Mutex<HashSet<Topic>>,
    /// The live subscriber connection's command side, while connected.
    /// Held across (re)subscription so that no topic slips between a
    /// reconnect's snapshot of `wanted` and a concurrent `subscribe`.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    connected: AtomicBool,
    reconnects: AtomicU64,
    /// Asks the supervisor to drop the connection and start afresh.
    reconnect: tokio::sync::Notify,
}

impl Shared {
    fn wanted(&self) -> std::sync::MutexGuard<'_, HashSet<Topic>> {
        self.wanted.lock().expect("wanted lock")
    }
}

pub struct RedisBus {
    shared: Arc<Shared>,
    publisher: ConnectionManager,
    events: Mutex<Option<mpsc::Receiver<BusEvent>>>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    /// Connects to `url`. The first connection must succeed (a wrong URL
    /// stops the start); later outages are ridden out with reconnects.
    /// `rediss://` is TLS, the server's certificate checked against the
    /// system's roots.
    pub async fn connect(url: &str) -> Result<RedisBus, BusError> {
        RedisBus::open(url, None, KEEPALIVE).await
    }

    /// [`RedisBus::connect`]; over `rediss://` the server's certificate
    /// must be signed by a CA of `ca_pem` (PEM text) when given, instead of
    /// the system's roots.
    pub async fn connect_trusting(url: &str, ca_pem: Option<&[u8]>) -> Result<RedisBus, BusError> {
        RedisBus::open(url, ca_pem, KEEPALIVE).await
    }

    /// [`RedisBus::connect`], checking the subscriber connection every
    /// `keepalive` (tests shorten it to see several checks pass).
    pub async fn connect_with_keepalive(
        url: &str,
        keepalive: Duration,
    ) -> Result<RedisBus, BusError> {
        RedisBus::open(url, None, keepalive).await
    }

    async fn open(
        url: &str,
        ca_pem: Option<&[u8]>,
        keepalive: Duration,
    ) -> Result<RedisBus, BusError> {
        // The redis client's rustls takes the process's crypto provider.
        crate::adapter::install_tls();
        let client = match ca_pem {
            None => redis::Client::open(url),
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
        }
        .map_err(|e| BusError::Unreachable(Failure::Other(in_words(&e, url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        // Publisher and subscriber come from the one client: both are TLS
        // with the same trust when the URL is rediss://.
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| BusError::Unreachable(connect_failure::classify(&e)))?;
        let shared = Arc::new(Shared {
            wanted: Mutex::new(HashSet::new()),
            sink: tokio::sync::Mutex::new(None),
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            reconnect: tokio::sync::Notify::new(),
        });
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let first = client
            .get_async_pubsub()
            .await
            .map_err(|e| BusError::Unreachable(connect_failure::classify(&e)))?;
        let supervisor = tokio::spawn(supervise(client, shared.clone(), tx, first, keepalive));
        Ok(RedisBus {
            shared,
            publisher,
            events: Mutex::new(Some(rx)),
            supervisor,
        })
    }
}

/// `error` in words, without the password the URL may hold.
fn in_words(error: &redis::RedisError, url: &str) -> String {
    connect_failure::without_password(&error.to_string(), url)
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// Keeps one subscriber connection alive: subscribes everything wanted,
/// forwards messages, and after any loss reconnects with backoff and tells
/// the instance to resync.
async fn supervise(
    client: redis::Client,
    shared: Arc<Shared>,
    events: mpsc::Sender<BusEvent>,
    first: redis::aio::PubSub,
    keepalive_every: Duration,
) {
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(100);
    let mut reconnecting = false;
    loop {
        let pubsub = match next.take() {
            Some(pubsub) => pubsub,
            None => match client.get_async_pubsub().await {
                Ok(pubsub) => pubsub,
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "Redis unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let (mut sink, mut stream) = pubsub.split();
        let resubscribed = {
            let mut guard = shared.sink.lock().await;
            let topics: Vec<Topic> = shared.wanted().iter().copied().collect();
            let channels: Vec<String> = topics.iter().map(|t| channel(*t)).collect();
            let ok = channels.is_empty()
                || matches!(
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(&channels)).await,
                    Ok(Ok(()))
                );
            if ok {
                *guard = Some(sink);
            }
            ok.then_some(topics)
        };
        let Some(topics) = resubscribed else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        shared.connected.store(true, Ordering::Release);
        backoff = Duration::from_millis(100);
        if reconnecting {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                topics = topics.len(),
                "Redis subscriber reconnected; clients will resume"
            );
            if events.send(BusEvent::Resync { topics }).await.is_err() {
                return;
            }
        }
        let mut keepalive = tokio::time::interval(keepalive_every);
        keepalive.tick().await;
        loop {
            let message = tokio::select! {
                message = stream.next() => message,
                _ = shared.reconnect.notified() => break,
                _ = keepalive.tick() => {
                    // A half-open connection delivers nothing and reports no
                    // error; a ping that does not come back reveals it.
                    let mut sink = shared.sink.lock().await;
                    let alive = match sink.as_mut() {
                        Some(sink) => matches!(
                            // In subscriber mode Redis answers PING with
                            // ["pong", ""], not +PONG: take any reply.
                            tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await,
                            Ok(Ok(_))
                        ),
                        None => false,
                    };
                    if alive { continue } else { break }
                }
            };
            let Some(message) = message else { break };
            // Names and payloads are read back into their types here, at
            // the edge; anything else on the channel is not Careline's.
            let Some(topic) = message
                .get_channel_name()
                .strip_prefix(PREFIX)
                .and_then(Topic::parse)
            else {
                continue;
            };
            let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
                continue;
            };
            let envelope = envelope_of(topic, payload);
            let event = BusEvent::Message { topic, envelope };
            if events.send(event).await.is_err() {
                return; // the instance is gone
            }
        }
        // The connection dropped: messages may have been lost meanwhile.
        shared.connected.store(false, Ordering::Release);
        *shared.sink.lock().await = None;
        reconnecting = true;
        tracing::warn!("Redis subscriber connection lost; reconnecting");
    }
}

impl Bus for RedisBus {
    fn publish(&self, topic: Topic, envelope: Envelope) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut publisher = self.publisher.clone();
            publisher
                .publish::<_, _, ()>(channel(topic), envelope.frame.as_ref())
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))
        })
    }

    fn count_in_window<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<(u64, Duration)>, BusError>> {
        Box::pin(async move {
            let mut connection = self.publisher.clone();
            let key = format!("{PREFIX}count:{key}");
            // One round trip, atomic: the first count of a window creates
            // the key with the window's expiry (SET NX: later counts do not
            // push the end back; works on Redis before 7, unlike PEXPIRE NX).
            let (count, left_ms): (u64, i64) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("PX")
                .arg(window.as_millis() as u64)
                .arg("NX")
                .ignore()
                .incr(&key, 1u64)
                .pttl(&key)
                .query_async(&mut connection)
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            Ok(Some((count, Duration::from_millis(left_ms.max(0) as u64))))
        })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut sink = self.shared.sink.lock().await;
            self.shared.wanted().insert(topic);
            if let Some(sink) = sink.as_mut() {
                let subscribed =
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(channel(topic))).await;
                if !matches!(subscribed, Ok(Ok(()))) {
                    // Kept in `wanted`: a fresh connection subscribes it and
                    // tells every listener to resync.
                    tracing::warn!(%topic, "subscribe failed; reconnecting");
                    self.shared.reconnect.notify_one();
                    return Err(BusError::Unavailable("subscribe did not complete".into()));
                }
            }
            Ok(())
        })
    }

    fn unsubscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut sink = self.shared.sink.lock().await;
            self.shared.wanted().remove(&topic);
            if let Some(sink) = sink.as_mut() {
                let _ =
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.unsubscribe(channel(topic))).await;
            }
            Ok(())
        })
    }

    fn events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.events.lock().expect("events lock").take()
    }

    fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }
}
