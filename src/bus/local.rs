//! The in-process bus, the single-node default. A [`LocalBroker`] plays the
//! part of the server that several instances would share; each
//! [`LocalBus`] is one instance's connection to it. On one node there is
//! one broker and one bus.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{BoxFuture, Bus, BusError, BusEvent, Envelope, Topic};

/// How many events may wait for an instance before the broker declares it
/// lagging and tells it to resync rather than block publishers.
const INSTANCE_QUEUE: usize = 4096;

type InstanceId = u64;

#[derive(Default)]
struct BrokerState {
    next_id: InstanceId,
    instances: HashMap<InstanceId, mpsc::Sender<BusEvent>>,
    topics: HashMap<Topic, HashSet<InstanceId>>,
    /// Topics each lagging instance lost messages on; it is told to resync
    /// them as soon as its queue has room again.
    lost: HashMap<InstanceId, HashSet<Topic>>,
}

#[derive(Clone, Default)]
pub struct LocalBroker {
    state: Arc<Mutex<BrokerState>>,
}

impl LocalBroker {
    pub fn new() -> LocalBroker {
        LocalBroker::default()
    }

    /// A new instance connection.
    pub fn connect(&self) -> LocalBus {
        let (tx, rx) = mpsc::channel(INSTANCE_QUEUE);
        let mut state = self.state.lock().expect("broker lock");
        state.next_id += 1;
        let id = state.next_id;
        state.instances.insert(id, tx);
        LocalBus {
            broker: self.clone(),
            id,
            events: Mutex::new(Some(rx)),
        }
    }
}

pub struct LocalBus {
    broker: LocalBroker,
    id: InstanceId,
    events: Mutex<Option<mpsc::Receiver<BusEvent>>>,
}

impl LocalBus {
    /// A single-node bus with a broker of its own.
    pub fn standalone() -> LocalBus {
        LocalBroker::new().connect()
    }
}

impl Drop for LocalBus {
    fn drop(&mut self) {
        if let Ok(mut state) = self.broker.state.lock() {
            state.instances.remove(&self.id);
            state.lost.remove(&self.id);
            for subscribers in state.topics.values_mut() {
                subscribers.remove(&self.id);
            }
        }
    }
}

impl Bus for LocalBus {
    fn publish(&self, topic: Topic, envelope: Envelope) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut guard = self.broker.state.lock().expect("broker lock");
            let state = &mut *guard;
            let Some(subscribers) = state.topics.get(&topic) else {
                return Ok(());
            };
            for id in subscribers {
                let Some(tx) = state.instances.get(id) else {
                    continue;
                };
                // First the resync owed from an earlier loss, then this message.
                if let Some(lost) = state.lost.get_mut(id) {
                    let resync = BusEvent::Resync {
                        topics: lost.iter().cloned().collect(),
                    };
                    if tx.try_send(resync).is_ok() {
                        state.lost.remove(id);
                    }
                }
                let event = BusEvent::Message {
                    topic,
                    envelope: envelope.clone(),
                };
                if tx.try_send(event).is_err() {
                    // The instance is not keeping up. Dropping is allowed by
                    // the contract; it resumes from the database once told.
                    tracing::warn!(instance = id, "bus instance lagging; it will resync");
                    state.lost.entry(*id).or_default().insert(topic);
                }
            }
            Ok(())
        })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut state = self.broker.state.lock().expect("broker lock");
            state.topics.entry(topic).or_default().insert(self.id);
            Ok(())
        })
    }

    fn unsubscribe(&self, topic: Topic) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut state = self.broker.state.lock().expect("broker lock");
            if let Some(subscribers) = state.topics.get_mut(&topic) {
                subscribers.remove(&self.id);
                if subscribers.is_empty() {
                    state.topics.remove(&topic);
                }
            }
            Ok(())
        })
    }

    fn events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.events.lock().expect("events lock").take()
    }

    fn is_connected(&self) -> bool {
        // In-process delivery cannot be cut off.
        true
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
