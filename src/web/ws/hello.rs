//! `hello`: who the socket speaks for. An agent's console was logged in at
//! the upgrade and is checked again here; a visitor names themselves with
//! the visitor token the widget's session gave them. Either way the answer
//! is a `welcome` with their conversations, which the socket then follows.

use std::sync::Arc;

use serde_json::Value;

use super::account::AgentAccount;
use super::hub::close;
use super::session::{Reply, Session};
use crate::auth::hash_token;
use crate::bus::Topic;
use crate::domain::DomainError;
use crate::domain::chat::{Audience, Participant};
use crate::model::{Conversation, ConversationStatus, Role, User, Visitor};
use crate::protocol::{ServerFrame, UserRef};

impl Session {
    /// `hello`: the first frame, which says who the socket speaks for.
    pub(super) async fn on_hello(
        &mut self,
        visitor_token: Option<String>,
        reference: Option<Value>,
    ) -> Reply {
        if self.who.is_some() {
            return Err(DomainError::Conflict("already said hello".into()));
        }
        match self.pending_agent.take() {
            Some((agent, token)) => self.agent_hello(agent, token).await,
            None => self.visitor_hello(visitor_token, reference).await,
        }
    }

    /// An agent's `hello`: their session is checked again, and kept checked
    /// by the heartbeat while the socket is open.
    async fn agent_hello(&mut self, agent: User, token: String) -> Reply {
        let chat = self.state.chat().clone();
        // Listen for changes to the account first, then check it: a
        // logout since the upgrade is either seen here or announced.
        self.subscribe(Topic::Account(agent.id)).await?;
        let token_hash = hash_token(&token);
        let (agent, expires_at) = self
            .state
            .store()
            .live_session(&token_hash)
            .await?
            .filter(|(user, _)| user.role.is_staff())
            .ok_or(DomainError::Unauthenticated)?;
        self.subscribe(Topic::Agent(agent.id)).await?;
        let mine = chat.my_conversations(&agent).await?;
        for c in &mine {
            self.subscribe(Topic::Staff(c.id)).await?;
        }
        let role = if agent.role == Role::Admin {
            "admin"
        } else {
            "agent"
        };
        let user = UserRef {
            id: agent.id.to_string(),
            name: agent.name.clone(),
        };
        self.welcome(role, user, &mine, Audience::Staff).await;
        let account = Arc::new(AgentAccount::default());
        account.set(Some(agent.clone()));
        self.heartbeat =
            Some(self.spawn_heartbeat(agent.id, token_hash, expires_at, account.clone()));
        self.account = Some(account);
        self.who = Some(Participant::Agent(agent));
        Ok(())
    }

    /// A visitor's `hello`, with the token that names them on this site.
    async fn visitor_hello(
        &mut self,
        visitor_token: Option<String>,
        reference: Option<Value>,
    ) -> Reply {
        let site = self.site.clone().ok_or(DomainError::NotFound)?;
        let token = visitor_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            crate::domain::invalid(
                "visitor_token",
                "visitor_token is required; get one from /api/widget/v1/session",
            )
        })?;
        let Some(visitor) = self
            .state
            .store()
            .visitor_by_token(site.id, &hash_token(&token))
            .await?
        else {
            // Tell the client why before closing; it must bootstrap again.
            self.error(
                "invalid",
                "visitor_token: unknown visitor token; get a new one from /api/widget/v1/session"
                    .into(),
                reference,
            )
            .await;
            self.kill(close::POLICY);
            return Ok(());
        };
        self.state.chat().visitor_connected(visitor.id).await;
        let conversations = self.state.store().visitor_conversations(visitor.id).await?;
        for c in conversations
            .iter()
            .filter(|c| c.status != ConversationStatus::Closed)
        {
            self.subscribe(Topic::Public(c.id)).await?;
        }
        self.welcome_visitor(&visitor, &conversations).await;
        self.who = Some(Participant::Visitor(visitor));
        Ok(())
    }

    /// A `welcome` for a visitor: their name, and their conversations.
    pub(super) async fn welcome_visitor(&self, visitor: &Visitor, conversations: &[Conversation]) {
        let user = UserRef {
            id: visitor.id.to_string(),
            name: visitor.display_name(),
        };
        self.welcome("visitor", user, conversations, Audience::Visitor)
            .await;
    }

    /// A `welcome`: who the socket speaks for, in which role, and their
    /// conversations as `audience` sees them.
    async fn welcome(
        &self,
        role: &'static str,
        user: UserRef,
        conversations: &[Conversation],
        audience: Audience,
    ) {
        let chat = self.state.chat();
        self.send(ServerFrame::Welcome {
            role,
            user,
            conversations: conversations
                .iter()
                .map(|c| chat.conversation_frame(c, audience))
                .collect(),
        })
        .await;
    }
}
