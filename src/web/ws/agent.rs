//! The frames only an agent (the console) sends: `note`, `presence`,
//! `watch_queue`, `claim`, `transfer`, `resolve`, and the agent's side of
//! `send`.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::session::{Reply, Session, Write};
use crate::bus::Topic;
use crate::domain::chat::Audience;
use crate::model::{ConversationId, User, UserId};

impl Session {
    /// `note`: a private note in a conversation, for staff only.
    pub(super) async fn on_note(
        &self,
        agent: &User,
        note: Write,
        reference: Option<Value>,
    ) -> Reply {
        self.agent_writes(agent, note, true, reference).await
    }

    /// An agent's message (`send`) or private note (`note`): follow the
    /// conversation before writing, so that nothing the write causes is
    /// missed.
    pub(super) async fn agent_writes(
        &self,
        agent: &User,
        write: Write,
        private: bool,
        reference: Option<Value>,
    ) -> Reply {
        let chat = self.state.chat();
        let topic = Topic::Staff(write.conversation_id);
        // Followed means looked up before (it exists): the common reply goes
        // out with no read first, unless its write finds there is something
        // to decide (a claim, a conflict, an email to an away customer).
        if write.attachment_id.is_none() && self.state.hub().is_subscribed(self.id, topic) {
            let sent = chat
                .send_as_owner(
                    agent,
                    write.conversation_id,
                    &write.client_msg_id,
                    &write.body,
                    private,
                )
                .await?;
            if let Some(sent) = sent {
                self.acknowledge(&sent, Audience::Staff, reference).await;
                return Ok(());
            }
        }
        let c = chat
            .staff_conversation(agent, write.conversation_id)
            .await?;
        self.subscribe(topic).await?;
        let sent = chat
            .send_as_agent_in(
                agent,
                c,
                &write.client_msg_id,
                &write.body,
                private,
                write.attachment_id.as_deref(),
            )
            .await?;
        self.acknowledge(&sent, Audience::Staff, reference).await;
        Ok(())
    }

    /// `presence`: the agent is online (and takes chats) or away.
    pub(super) async fn on_presence(&self, agent: &User, status: &str) -> Reply {
        let online = match status {
            "online" => true,
            "away" => false,
            _ => {
                return Err(crate::domain::invalid(
                    "status",
                    "status must be online or away",
                ));
            }
        };
        self.agent_online.store(online, Ordering::Release);
        self.state.chat().presence(agent, online).await
    }

    /// `watch_queue`: follows the queue of waiting conversations, starting
    /// with a snapshot of it.
    pub(super) async fn on_watch_queue(&self) -> Reply {
        self.subscribe(Topic::Queue).await?;
        self.send(self.state.chat().queue_frame().await?).await;
        Ok(())
    }

    /// `claim`: takes a waiting conversation.
    pub(super) async fn on_claim(&self, agent: &User, conversation_id: ConversationId) -> Reply {
        // Follow before claiming, so nothing published in between is
        // missed; a lost claim stops following what it never owned.
        let topic = Topic::Staff(conversation_id);
        let followed = self.state.hub().is_subscribed(self.id, topic);
        self.subscribe(topic).await?;
        let c = match self.state.chat().claim(agent, conversation_id).await {
            Ok(c) => c,
            Err(e) => {
                if !followed {
                    self.unsubscribe(topic).await?;
                }
                return Err(e);
            }
        };
        self.send_conversation(&c, Audience::Staff).await;
        Ok(())
    }

    /// `transfer`: hands a conversation to another agent.
    pub(super) async fn on_transfer(
        &self,
        agent: &User,
        conversation_id: ConversationId,
        agent_id: i64,
    ) -> Reply {
        let c = self
            .state
            .chat()
            .transfer(agent, conversation_id, UserId(agent_id))
            .await?;
        self.send_conversation(&c, Audience::Staff).await;
        Ok(())
    }

    /// `resolve`: marks a conversation resolved.
    pub(super) async fn on_resolve(&self, agent: &User, conversation_id: ConversationId) -> Reply {
        let c = self.state.chat().resolve(agent, conversation_id).await?;
        self.send_conversation(&c, Audience::Staff).await;
        Ok(())
    }
}
