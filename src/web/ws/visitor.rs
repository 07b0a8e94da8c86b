//! The frames only a visitor (the widget) sends: `start`, `handoff`,
//! `rate`, `contact`, and the visitor's side of `send`.

use serde_json::Value;

use super::session::{Reply, Session, Write};
use crate::bus::Topic;
use crate::domain::chat::{Audience, Participant};
use crate::model::{ConversationId, Visitor};

impl Session {
    /// `start`: opens a conversation, with a first message if it has a body.
    pub(super) async fn on_start(
        &self,
        visitor: &Visitor,
        client_msg_id: Option<String>,
        body: Option<String>,
        reference: Option<Value>,
    ) -> Reply {
        let chat = self.state.chat();
        let c = chat.start(visitor, client_msg_id.as_deref()).await?;
        self.subscribe(Topic::Public(c.id)).await?;
        self.send_conversation(&c, Audience::Visitor).await;
        if let Some(body) = body.filter(|b| !b.trim().is_empty()) {
            let client_msg_id = client_msg_id.unwrap_or_else(|| format!("start-{}", c.id));
            let sent = chat
                .send_as_visitor(visitor, c.id, &client_msg_id, &body, None)
                .await?;
            self.acknowledge(&sent, Audience::Visitor, reference).await;
        }
        Ok(())
    }

    /// A visitor's `send`: a message in one of their conversations.
    pub(super) async fn visitor_sends(
        &self,
        visitor: &Visitor,
        write: Write,
        reference: Option<Value>,
    ) -> Reply {
        let chat = self.state.chat();
        let topic = Topic::Public(write.conversation_id);
        // This socket follows only conversations it has checked are
        // the visitor's (hello, start, resume, an earlier send), so
        // following it is proof enough: no lookup on the hot path.
        if !self.state.hub().is_subscribed(self.id, topic) {
            // Theirs? Then follow it before writing, so that what the
            // write causes (a reopen, a quick reply) is not missed.
            chat.visitor_conversation(visitor, write.conversation_id)
                .await?;
            self.subscribe(topic).await?;
        }
        let sent = chat
            .send_as_visitor_to(
                visitor,
                write.conversation_id,
                &write.client_msg_id,
                &write.body,
                write.attachment_id.as_deref(),
            )
            .await?;
        self.acknowledge(&sent, Audience::Visitor, reference).await;
        Ok(())
    }

    /// `handoff`: asks for a person instead of the bot.
    pub(super) async fn on_handoff(
        &self,
        visitor: &Visitor,
        conversation_id: ConversationId,
    ) -> Reply {
        let c = self
            .state
            .chat()
            .visitor_handoff(visitor, conversation_id)
            .await?;
        self.send_conversation(&c, Audience::Visitor).await;
        Ok(())
    }

    /// `rate`: scores a conversation, with an optional comment.
    pub(super) async fn on_rate(
        &self,
        visitor: &Visitor,
        conversation_id: ConversationId,
        score: i64,
        comment: Option<String>,
    ) -> Reply {
        let c = self
            .state
            .chat()
            .rate(visitor, conversation_id, score, comment.as_deref())
            .await?;
        self.send_conversation(&c, Audience::Visitor).await;
        Ok(())
    }

    /// `contact`: the visitor leaves a name and email.
    pub(super) async fn on_contact(
        &mut self,
        visitor: &Visitor,
        name: Option<String>,
        email: Option<String>,
    ) -> Reply {
        let visitor = self
            .state
            .chat()
            .contact(visitor, name.as_deref(), email.as_deref())
            .await?;
        // A fresh welcome: the visitor's new name, and their conversations.
        let conversations = self.state.store().visitor_conversations(visitor.id).await?;
        self.welcome_visitor(&visitor, &conversations).await;
        self.who = Some(Participant::Visitor(visitor));
        Ok(())
    }
}
