//! `resume`: a conversation's messages after the client's last `seq`,
//! replayed page by page, then its current state.

use serde_json::Value;

use super::session::{Reply, Session};
use crate::domain::chat::Participant;
use crate::model::ConversationId;
use crate::protocol::ServerFrame;

impl Session {
    /// `resume`: follows a conversation and replays what the client missed.
    pub(super) async fn on_resume(
        &self,
        who: &Participant,
        conversation_id: ConversationId,
        after_seq: i64,
        reference: Option<Value>,
    ) -> Reply {
        let chat = self.state.chat();
        let c = chat.conversation_for(who, conversation_id).await?;
        // Subscribe first, then read: a message committed meanwhile
        // arrives live, from the database, or both (clients drop
        // the seq they already hold), never neither.
        self.subscribe(self.conversation_topic(c.id)).await?;
        let audience = self.audience();
        // Page by page: memory stays bounded however long the history.
        let mut cursor = chat.replay_start(&c, audience, after_seq).await?;
        let last = loop {
            let (frames, next, more) = chat.replay_page(&c, audience, cursor).await?;
            for frame in frames {
                self.send(frame).await;
            }
            if self.outbox.is_closed() {
                // The socket is closing: no use reading the rest.
                return Ok(());
            }
            cursor = next;
            if !more {
                break cursor.last;
            }
        };
        let fresh = chat.conversation_for(who, conversation_id).await?;
        self.send_conversation(&fresh, audience).await;
        self.send(ServerFrame::Resumed {
            conversation_id: c.id.to_string(),
            last_seq: last,
            reference,
        })
        .await;
        Ok(())
    }
}
