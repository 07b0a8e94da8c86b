//! After the commit, publish: every change goes out on the bus once per
//! audience, after it is stored (design §3.4): [`Topic::Public`] carries
//! what the visitor may see, [`Topic::Staff`] what staff see,
//! [`Topic::Queue`] the waiting list (coalesced snapshots), and
//! [`Topic::Agent`] tells one agent that a conversation became theirs.

use std::sync::Arc;
use std::time::Duration;

use super::Chat;
use super::frames::{Audience, queue_frame};
use crate::bus::{Bus, Envelope, Topic};
use crate::domain::DomainResult;
use crate::model::{Conversation, ConversationId, Message};
use crate::protocol::ServerFrame;
use crate::store::Store;

/// Queue snapshots go out at most once per this period: a burst of a
/// thousand handoffs would otherwise read the queue and send all of it to
/// every agent a thousand times (quadratic). A snapshot is a snapshot, so
/// the latest one is all anyone needs.
pub(super) const QUEUE_COALESCE: Duration = Duration::from_millis(100);

/// Publishes `envelope`; on failure tries again in the background (a late
/// frame is fine: clients order by seq and drop repeats). If the bus stays
/// down, its reconnect makes every instance tell its clients to resume.
pub(super) async fn publish_on(bus: &Arc<dyn Bus>, topic: Topic, envelope: Envelope) {
    if let Err(e) = bus.publish(topic, envelope.clone()).await {
        tracing::warn!(%topic, error = %e, "publish failed; retrying");
        let bus = bus.clone();
        tokio::spawn(async move {
            for delay in [200, 1000, 3000] {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if bus.publish(topic, envelope.clone()).await.is_ok() {
                    return;
                }
            }
            tracing::error!(%topic, "publish failed for good; clients resume after the bus reconnects");
        });
    }
}

/// Sends a queue snapshot after each change, at most once per
/// [`QUEUE_COALESCE`]; changes meanwhile are folded into the next one.
/// Ends with its `Chat` (the last other holder of `changed`).
pub(super) async fn send_queue_snapshots(
    store: Store,
    bus: Arc<dyn Bus>,
    changed: Arc<tokio::sync::Notify>,
) {
    loop {
        changed.notified().await;
        tokio::time::sleep(QUEUE_COALESCE).await;
        if Arc::strong_count(&changed) == 1 {
            return;
        }
        match queue_frame(&store).await {
            Ok(frame) => publish_on(&bus, Topic::Queue, Envelope::frame(frame.to_text())).await,
            Err(e) => tracing::warn!(error = %e, "could not read the queue"),
        }
    }
}

impl Chat {
    pub(super) async fn publish(&self, topic: Topic, frame: &ServerFrame) {
        publish_on(&self.bus, topic, Envelope::frame(frame.to_text())).await;
    }

    pub(super) async fn publish_message(&self, message: &Message) {
        if let Some(frame) = self.message_frame(message, Audience::Staff) {
            self.publish(Topic::Staff(message.conversation_id), &frame)
                .await;
        }
        if let Some(frame) = self.message_frame(message, Audience::Visitor) {
            self.publish(Topic::Public(message.conversation_id), &frame)
                .await;
        }
        let since_commit = (crate::store::now_ms() - message.created_at).max(0) as u64;
        self.metrics
            .publish_latency
            .observe(Duration::from_millis(since_commit));
    }

    /// Tells both audiences (and the assignee) where a conversation stands.
    pub async fn publish_conversation(
        &self,
        id: ConversationId,
    ) -> DomainResult<Option<Conversation>> {
        let Some(c) = self.store.conversation(id).await? else {
            return Ok(None);
        };
        let staff = ServerFrame::Conversation(self.conversation_frame(&c, Audience::Staff));
        let staff = staff.to_text();
        publish_on(&self.bus, Topic::Staff(id), Envelope::frame(staff.clone())).await;
        if let Some(agent) = c.assignee_id {
            // The agent's consoles follow the conversation from now on.
            let envelope = Envelope::assignment(staff, id);
            publish_on(&self.bus, Topic::Agent(agent), envelope).await;
        }
        let visitor = ServerFrame::Conversation(self.conversation_frame(&c, Audience::Visitor));
        self.publish(Topic::Public(id), &visitor).await;
        Ok(Some(c))
    }

    pub async fn queue_frame(&self) -> DomainResult<ServerFrame> {
        queue_frame(&self.store).await
    }

    /// The queue changed: a snapshot goes out shortly (coalesced).
    pub(super) async fn publish_queue(&self) {
        self.queue_changed.notify_one();
    }

    /// A ticket changed (a reply, a note, a new status or assignee, a new
    /// ticket): live clients hear of it like any chat change, including
    /// exactly the message the change wrote. Called by the ticket
    /// operations themselves, after their commit. The change is stored
    /// whatever happens here, so a failure is logged, never returned: an
    /// error page would invite the writer to post it again.
    pub(in crate::domain) async fn ticket_changed(
        &self,
        conversation_id: ConversationId,
        message: Option<&Message>,
    ) {
        if let Some(message) = message {
            self.publish_message(message).await;
        }
        if let Err(e) = self.publish_conversation(conversation_id).await {
            // Clients that missed it catch up on their next resume.
            tracing::warn!(conversation = conversation_id.0, error = %e, "could not announce a ticket change");
        }
        self.publish_queue().await;
    }
}
