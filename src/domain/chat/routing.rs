//! Who takes a conversation: the handoff from the bot (a ticket is opened
//! here), automatic assignment to the least busy available agent, the
//! atomic claim, transfer, resolve, and picking up the queue when an agent
//! comes online. Whoever is given a conversation hears of it
//! ([`Chat::assigned`], by `domain::notifications`' rule).

use super::Chat;
use super::input::subject_from;
use crate::domain::notifications::{self, Assigned};
use crate::domain::ownership;
use crate::domain::{DomainError, DomainResult, invalid};
use crate::model::{
    Conversation, ConversationId, ConversationStatus, SenderKind, User, UserId, Visitor,
};
use crate::store::{Assignment, Wait};

/// Why a conversation goes to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffReason {
    CustomerAsked,
    BotHandedOff,
    BotMissed,
    BotFailed,
}

impl Chat {
    /// Sends the conversation to a person: it leaves the bot, gets a ticket
    /// with the transcript so far, and goes to an available agent or the queue.
    pub async fn handoff(
        &self,
        conversation_id: ConversationId,
        reason: HandoffReason,
    ) -> DomainResult<()> {
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if c.status != ConversationStatus::Bot {
            return Ok(());
        }
        let first = self
            .store
            .messages_after(c.id, 0, false, 20)
            .await?
            .into_iter()
            .find(|m| m.sender_kind == SenderKind::Customer)
            .map(|m| m.body);
        let subject = subject_from(first.as_deref(), &c.customer_name);
        if !self.store.escalate(c.id, &subject, "Careline").await? {
            return Ok(());
        }
        tracing::info!(conversation = c.id.0, ?reason, "handed off to a person");
        let someone_online = self
            .store
            .any_agent_online(self.presence_fresh_ms())
            .await?;
        let text = if someone_online {
            "Connecting you with a person. You can keep writing here."
        } else {
            "No one from our team is online right now. Leave your email and we will reply by email; you will also see the answer here."
        };
        self.system_says(c.id, &format!("handoff:{}", c.last_seq), text)
            .await?;
        self.publish_conversation(c.id).await?;
        self.route(c.id).await?;
        self.publish_queue().await;
        Ok(())
    }

    /// Gives a waiting conversation to the least busy available agent, if
    /// any. Agents another assignment holds at this moment are tried last
    /// (then waited for), so that a burst of handoffs spreads over the team
    /// instead of queueing behind the least busy agent's row.
    pub(super) async fn route(&self, conversation_id: ConversationId) -> DomainResult<bool> {
        let agents = self
            .store
            .available_agents(self.presence_fresh_ms())
            .await?;
        let mut busy = Vec::new();
        for agent in &agents {
            match self
                .store
                .assign_within_capacity(conversation_id, agent, Wait::No)
                .await?
            {
                Assignment::Assigned => {
                    self.assigned(conversation_id, agent, None).await?;
                    return Ok(true);
                }
                Assignment::AgentBusy => busy.push(agent),
                Assignment::AgentFull => {}
                Assignment::NoLongerWaiting => return Ok(false),
            }
        }
        for agent in busy {
            match self
                .store
                .assign_within_capacity(conversation_id, agent, Wait::Yes)
                .await?
            {
                Assignment::Assigned => {
                    self.assigned(conversation_id, agent, None).await?;
                    return Ok(true);
                }
                Assignment::NoLongerWaiting => return Ok(false),
                Assignment::AgentFull | Assignment::AgentBusy => {}
            }
        }
        Ok(false)
    }

    /// The visitor asks for a person (the button).
    pub async fn visitor_handoff(
        &self,
        visitor: &Visitor,
        conversation_id: ConversationId,
    ) -> DomainResult<Conversation> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        self.handoff(c.id, HandoffReason::CustomerAsked).await?;
        self.visitor_conversation(visitor, conversation_id).await
    }

    pub async fn claim(
        &self,
        agent: &User,
        conversation_id: ConversationId,
    ) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        if c.assignee_id == Some(agent.id) {
            return Ok(c);
        }
        if !self.store.claim(c.id, agent).await? {
            return Err(DomainError::Conflict(match c.assignee_name {
                Some(name) => format!("{name} already took this conversation"),
                None => "this conversation is not waiting for an agent".into(),
            }));
        }
        self.publish_queue().await;
        self.assigned(c.id, agent, Some(agent))
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn transfer(
        &self,
        agent: &User,
        conversation_id: ConversationId,
        to: UserId,
    ) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        let target = self
            .store
            .user(to)
            .await?
            .filter(|u| u.role.is_staff())
            .ok_or_else(|| invalid("agent_id", "no agent with that id"))?;
        let from = c.assignee_id.ok_or_else(|| {
            DomainError::Conflict("claim the conversation before transferring it".into())
        })?;
        ownership::may_reassign(agent, c.owner())?;
        if !self.store.transfer(c.id, agent, from, &target).await? {
            return Err(DomainError::Conflict(
                "the conversation changed hands meanwhile; reload".into(),
            ));
        }
        self.system_says(
            c.id,
            &format!("transfer:{}:{}", c.last_seq, target.id),
            &format!("{} will take it from here.", target.name),
        )
        .await?;
        self.assigned(c.id, &target, Some(agent))
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// Resolves a conversation: its owner, an admin, or anyone while nobody
    /// owns it (clearing the queue).
    pub async fn resolve(
        &self,
        agent: &User,
        conversation_id: ConversationId,
    ) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        ownership::may_close(agent, c.owner())?;
        let email = match c.ticket_number {
            Some(number) => {
                let subject = self
                    .store
                    .ticket_by_number(number)
                    .await?
                    .map(|t| t.subject)
                    .unwrap_or_default();
                crate::domain::tickets::resolved_email(
                    c.id,
                    number,
                    &subject,
                    &c.customer_name,
                    &c.customer_email,
                )
            }
            None => None,
        };
        if !self.store.resolve(c.id, agent, email).await? {
            return Err(DomainError::Conflict(
                "the conversation is already resolved".into(),
            ));
        }
        if c.status == ConversationStatus::Waiting {
            self.publish_queue().await;
        }
        self.publish_conversation(c.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// Assigns waiting conversations to `agent`, oldest first, while the
    /// agent is available and below capacity: when they come online, or
    /// when an admin gives them room for more chats.
    pub async fn pick_up_waiting(&self, agent: &User) -> DomainResult<()> {
        for entry in self.store.queue().await? {
            let available = self
                .store
                .available_agents(self.presence_fresh_ms())
                .await?;
            if !available.iter().any(|a| a.id == agent.id) {
                break;
            }
            match self
                .store
                .assign_within_capacity(entry.conversation_id, agent, Wait::Yes)
                .await?
            {
                Assignment::Assigned => {
                    self.assigned(entry.conversation_id, agent, None).await?;
                }
                Assignment::AgentFull => break,
                Assignment::AgentBusy | Assignment::NoLongerWaiting => {}
            }
        }
        self.publish_queue().await;
        Ok(())
    }

    /// Conversation `id` became `agent`'s, given by `by` (`None`: routing):
    /// everyone following it hears (the conversation is returned as
    /// published), and the agent is emailed if the rule says so. The email
    /// is queued right after the commit, not in it: the store's claim,
    /// transfer and assignment are conditional updates that take no email,
    /// and the assignment stands whatever happens to its email.
    pub(super) async fn assigned(
        &self,
        id: ConversationId,
        agent: &User,
        by: Option<&User>,
    ) -> DomainResult<Option<Conversation>> {
        self.away_notices.owner_changed(id);
        let c = self.publish_conversation(id).await?;
        if let Some(c) = &c {
            let what = Assigned::Conversation {
                id,
                ticket_number: c.ticket_number,
                customer: &c.customer_name,
            };
            notifications::tell_assignee(&self.store, agent, by, what).await;
        }
        Ok(c)
    }

    /// Conversation `id` was given to someone outside the chat (the ticket
    /// page): its new owner has not been told that the customer wrote.
    pub fn changed_hands(&self, id: ConversationId) {
        self.away_notices.owner_changed(id);
    }

    pub async fn my_conversations(&self, agent: &User) -> DomainResult<Vec<Conversation>> {
        Ok(self.store.agent_conversations(agent.id).await?)
    }
}
