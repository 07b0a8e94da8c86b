//! Writing into a conversation: a visitor's message (which may wake the
//! bot, reopen the conversation, or email its owner who is away), an
//! agent's reply or private note (which may claim it, and email a customer
//! who is away), and the first response stamped on its ticket.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Chat;
use super::input::{attachment_taken, body_with, message_text, parse_client_msg_id};
use super::presence::away_if_unseen_since;
use crate::domain::attachments::{Reader, sender_upload};
use crate::domain::notifications;
use crate::domain::ownership;
use crate::domain::{DomainError, DomainResult, invalid};
use crate::model::{
    AttachmentRef, Conversation, ConversationId, ConversationStatus, Message, SenderKind, User,
    Visitor,
};
use crate::store::{Appended, NewChatMessage, NewEmail};

/// The result of a send: the stored message, and whether it was a retry.
pub struct Sent {
    pub message: Message,
    pub duplicate: bool,
}

/// At most one "you have a reply" email per conversation in this window.
pub(super) const EMAIL_COALESCE: Duration = Duration::from_secs(600);

/// Conversations remembered in `Chat::first_responded` before it starts over.
pub(super) const FIRST_RESPONSES_KEPT: usize = 100_000;

/// An agent's message as both write paths store it: a reply lands only
/// while this agent still owns the conversation; a private note anywhere.
pub(super) fn agent_message<'a>(
    agent: &'a User,
    body: &'a str,
    private: bool,
    client_msg_id: &'a str,
) -> NewChatMessage<'a> {
    NewChatMessage {
        sender_kind: SenderKind::Agent,
        sender_user_id: Some(agent.id),
        sender_name: &agent.name,
        body,
        private,
        client_msg_id,
        only_in: None,
        only_assignee: (!private).then_some(agent.id),
        only_if_customer_seen_after: None,
        email: None,
        attachment: None,
        options: &[],
    }
}

/// An agent's text, with its attachment, checked; errors name the field the
/// console shows them on.
pub(super) fn agent_body(
    body: &str,
    attachment: Option<&AttachmentRef>,
    private: bool,
) -> DomainResult<String> {
    body_with(body, attachment).map_err(|e| match e {
        DomainError::Invalid { message, .. } => {
            invalid(if private { "note" } else { "body" }, message)
        }
        other => other,
    })
}

/// An agent's write as the agent is told of it: stored (new, or the message
/// a resend already stored), refused by the write's conditions (`None`: each
/// caller says what that means), or an error.
pub(super) fn agent_sent(appended: Appended) -> DomainResult<Option<Sent>> {
    match appended {
        Appended::New(message, _) => Ok(Some(Sent {
            message,
            duplicate: false,
        })),
        Appended::Duplicate(message) => Ok(Some(Sent {
            message,
            duplicate: true,
        })),
        Appended::Refused => Ok(None),
        Appended::IdTaken => Err(DomainError::Conflict(
            "client_msg_id is already used in this conversation; send with a fresh one".into(),
        )),
        Appended::AttachmentTaken => Err(attachment_taken()),
    }
}

impl Chat {
    /// The visitor writes. A conversation that was resolved or closed
    /// reopens; one with the bot gets the bot's answer (spawned, so the
    /// sender's ack is not held up by the bot).
    pub async fn send_as_visitor(
        self: &Arc<Self>,
        visitor: &Visitor,
        conversation_id: ConversationId,
        client_msg_id: &str,
        body: &str,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        self.send_as_visitor_to(visitor, c.id, client_msg_id, body, attachment_id)
            .await
    }

    /// [`Chat::send_as_visitor`] in conversation `id`, which the caller
    /// already knows is the visitor's (a conversation's visitor never
    /// changes): no lookup at all. Its status is decided by the write.
    pub async fn send_as_visitor_to(
        self: &Arc<Self>,
        visitor: &Visitor,
        id: ConversationId,
        client_msg_id: &str,
        body: &str,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let attachment = sender_upload(&self.store, id, Reader::Customer, attachment_id).await?;
        let body = body_with(body, attachment.as_ref())?;
        let name = visitor.display_name();
        // The email to an owner who is away (if due) is written with the message.
        let email = notifications::customer_wrote_email(
            &self.store,
            &self.away_notices,
            id,
            &name,
            &message_text(&body, attachment.as_ref()),
            self.presence_fresh_ms(),
        )
        .await?;
        let owner_told = email.is_some();
        let appended = self
            .store
            .append_message(
                id,
                NewChatMessage {
                    sender_kind: SenderKind::Customer,
                    sender_user_id: visitor.user_id,
                    sender_name: &name,
                    body: &body,
                    private: false,
                    client_msg_id: &client_msg_id,
                    only_in: None,
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email,
                    attachment: attachment.as_ref(),
                    options: &[],
                },
            )
            .await?;
        if owner_told && !matches!(appended, Appended::New(..)) {
            self.away_notices.unmark(id);
        }
        let (sent, status) = match appended {
            Appended::Duplicate(message) => {
                return Ok(Sent {
                    message,
                    duplicate: true,
                });
            }
            Appended::New(message, status) => (message, status),
            Appended::IdTaken => {
                return Err(DomainError::Conflict(
                    "client_msg_id is already used in this conversation; send with a fresh one"
                        .into(),
                ));
            }
            Appended::Refused => {
                return Err(DomainError::Conflict(
                    "the conversation does not take messages now".into(),
                ));
            }
            Appended::AttachmentTaken => return Err(attachment_taken()),
        };
        self.publish_message(&sent).await;
        // Decided on the status the write saw, not the one read before it.
        match status {
            ConversationStatus::Bot => {
                let chat = self.clone();
                let message = sent.clone();
                // A visitor's conversations are all on the visitor's site.
                let site_id = visitor.site_id;
                tokio::spawn(async move {
                    if let Err(e) = chat.bot_turn(&message, site_id).await {
                        tracing::warn!(conversation = message.conversation_id.0, error = %e, "bot turn failed");
                    }
                });
            }
            ConversationStatus::Resolved | ConversationStatus::Closed => {
                if self.store.reopen(id, &visitor.display_name()).await? {
                    self.publish_conversation(id).await?;
                    self.publish_queue().await;
                }
            }
            ConversationStatus::Waiting | ConversationStatus::Live => {}
        }
        Ok(Sent {
            message: sent,
            duplicate: false,
        })
    }

    /// A private note from Careline itself for the agents (what became of
    /// an email's files), written once per `client_msg_id`.
    pub async fn note_from_careline(
        &self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> DomainResult<()> {
        self.careline_says(conversation_id, client_msg_id, text, true)
            .await
    }

    /// An agent writes (a reply, or a private note). Writing to a waiting
    /// conversation claims it; one owned by someone else is refused.
    pub async fn send_as_agent(
        &self,
        agent: &User,
        conversation_id: ConversationId,
        client_msg_id: &str,
        body: &str,
        private: bool,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        self.send_as_agent_in(agent, c, client_msg_id, body, private, attachment_id)
            .await
    }

    /// An agent's message written straight away, without reading the
    /// conversation first, when nothing needs deciding before the write:
    /// the agent owns the conversation (a reply), and its customer needs no
    /// email about it. Both are conditions of the write itself. `None` when
    /// they refused it: [`Chat::send_as_agent`] then decides (a claim, a
    /// conflict, an email) and writes. For a conversation the caller knows
    /// exists (a console following it); no attachment (it has its checks).
    pub async fn send_as_owner(
        &self,
        agent: &User,
        conversation_id: ConversationId,
        client_msg_id: &str,
        body: &str,
        private: bool,
    ) -> DomainResult<Option<Sent>> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let body = agent_body(body, None, private)?;
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    // Within a burst already emailed about, no email is due
                    // whether or not the customer is here.
                    only_if_customer_seen_after: (!private
                        && !self.emailed_lately(conversation_id))
                    .then(away_if_unseen_since),
                    ..agent_message(agent, &body, private, &client_msg_id)
                },
            )
            .await?;
        let Some(sent) = agent_sent(appended)? else {
            return Ok(None);
        };
        if !sent.duplicate {
            self.metrics
                .agent_writes_direct
                .fetch_add(1, Ordering::Relaxed);
            self.publish_message(&sent.message).await;
            if !private {
                self.note_first_response(conversation_id).await?;
            }
        }
        Ok(Some(sent))
    }

    /// Whether this conversation's customer was emailed within
    /// [`EMAIL_COALESCE`] (so a reply now would not email them again).
    pub(super) fn emailed_lately(&self, conversation_id: ConversationId) -> bool {
        self.emailed
            .lock()
            .expect("emailed lock")
            .get(&conversation_id)
            .is_some_and(|at| at.elapsed() < EMAIL_COALESCE)
    }

    /// Stamps the ticket's first response unless this instance knows it
    /// has one (one idempotent write per conversation, not one per reply).
    pub(super) async fn note_first_response(
        &self,
        conversation_id: ConversationId,
    ) -> DomainResult<()> {
        let known = self
            .first_responded
            .lock()
            .expect("first responses lock")
            .contains(&conversation_id);
        if !known && self.store.note_first_response(conversation_id).await? {
            self.remember_first_response(conversation_id);
        }
        Ok(())
    }

    pub(super) fn remember_first_response(&self, conversation_id: ConversationId) {
        let mut known = self.first_responded.lock().expect("first responses lock");
        if known.len() >= FIRST_RESPONSES_KEPT {
            known.clear();
        }
        known.insert(conversation_id);
    }

    /// [`Chat::send_as_agent`] with the conversation already in hand (as
    /// read by [`Chat::staff_conversation`]: one lookup less).
    pub async fn send_as_agent_in(
        &self,
        agent: &User,
        mut c: Conversation,
        client_msg_id: &str,
        body: &str,
        private: bool,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        let conversation_id = c.id;
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let attachment = sender_upload(
            &self.store,
            c.id,
            Reader::Staff { user_id: agent.id },
            attachment_id,
        )
        .await?;
        let body = agent_body(body, attachment.as_ref(), private)?;
        if !private {
            if c.status == ConversationStatus::Waiting && c.assignee_id.is_none() {
                if self.store.claim(c.id, agent).await? {
                    self.assigned(c.id, agent, Some(agent)).await?;
                    self.publish_queue().await;
                }
                c = self.staff_conversation(agent, conversation_id).await?;
            }
            ownership::may_write(agent, c.owner())?;
        }
        // The email (if the customer is away) is written with the message.
        let email = if private {
            None
        } else {
            self.reply_email_if_away(&c, agent, &message_text(&body, attachment.as_ref()))
                .await?
        };
        let appended = self
            .store
            .append_message(
                c.id,
                NewChatMessage {
                    email,
                    attachment: attachment.as_ref(),
                    ..agent_message(agent, &body, private, &client_msg_id)
                },
            )
            .await?;
        let Some(sent) = agent_sent(appended)? else {
            return Err(DomainError::Conflict(
                "someone else took this conversation meanwhile; ask them to transfer it".into(),
            ));
        };
        if sent.duplicate {
            return Ok(sent);
        }
        self.metrics
            .agent_writes_read_first
            .fetch_add(1, Ordering::Relaxed);
        self.publish_message(&sent.message).await;
        if !private && c.ticket_id.is_some() {
            if c.first_response_at.is_some() {
                self.remember_first_response(c.id);
            } else {
                self.note_first_response(c.id).await?;
            }
        }
        Ok(sent)
    }

    /// The email for a customer who is not connected, so that a reply is
    /// never missed; bursts of replies make one email.
    pub(super) async fn reply_email_if_away(
        &self,
        c: &Conversation,
        agent: &User,
        body: &str,
    ) -> DomainResult<Option<NewEmail>> {
        if c.customer_email.is_empty() || self.visitor_online(c.visitor_id).await? {
            return Ok(None);
        }
        {
            let mut emailed = self.emailed.lock().expect("emailed lock");
            if emailed
                .get(&c.id)
                .is_some_and(|at| at.elapsed() < EMAIL_COALESCE)
            {
                return Ok(None);
            }
            emailed.insert(c.id, Instant::now());
        }
        Ok(Some(NewEmail {
            to: c.customer_email.clone(),
            template: "agent_reply",
            payload: serde_json::json!({
                "conversation_id": c.id,
                "name": c.customer_name,
                "ticket_number": c.ticket_number,
                "agent": agent.name,
                "body": body,
            }),
        }))
    }
}
