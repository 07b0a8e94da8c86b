//! What a visitor does besides writing: starts a conversation, leaves a
//! name and email, rates the help.

use super::Chat;
use crate::domain::{DomainError, DomainResult, invalid};
use crate::model::{Conversation, ConversationId, ConversationStatus, Email, Visitor};

impl Chat {
    /// A new conversation with the bot. A retried start (same first
    /// `client_msg_id`) gets the conversation the first one created.
    pub async fn start(
        &self,
        visitor: &Visitor,
        client_msg_id: Option<&str>,
    ) -> DomainResult<Conversation> {
        if let Some(id) = client_msg_id
            && let Some(existing) = self.store.conversation_with_message(visitor.id, id).await?
        {
            return Ok(existing);
        }
        // A widget opened before its site was archived (or deleted) takes
        // no new chat either.
        let site = self
            .store
            .site(visitor.site_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        crate::domain::sites::takes_new_chats(&site)?;
        Ok(self
            .store
            .create_conversation(visitor.site_id, visitor.id)
            .await?)
    }

    pub async fn contact(
        &self,
        visitor: &Visitor,
        name: Option<&str>,
        email: Option<&str>,
    ) -> DomainResult<Visitor> {
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => crate::domain::parse_name(n)?,
            None => String::new(),
        };
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => Email::parse(e)?.as_str().to_string(),
            None => String::new(),
        };
        self.store
            .update_visitor_contact(visitor.id, &name, &email)
            .await?;
        self.store
            .visitor(visitor.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn rate(
        &self,
        visitor: &Visitor,
        conversation_id: ConversationId,
        score: i64,
        comment: Option<&str>,
    ) -> DomainResult<Conversation> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        if !(1..=5).contains(&score) {
            return Err(invalid("score", "score must be 1 to 5"));
        }
        if !matches!(
            c.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        ) {
            return Err(DomainError::Conflict(
                "rate a conversation once it is resolved".into(),
            ));
        }
        let comment: String = comment.unwrap_or("").trim().chars().take(2000).collect();
        self.store
            .rate(c.id, score, &comment, &visitor.display_name())
            .await?;
        Ok(c)
    }
}
