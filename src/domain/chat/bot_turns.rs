//! The bot's turn after a customer's message: answer, count a miss, or hand
//! off; a bot that errs or is slower than the timeout hands off too. And
//! what Careline itself says in a conversation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Chat;
use super::input::asks_for_a_person;
use super::routing::HandoffReason;
use crate::bot::{BotReply, BotTurn, bounded_options, bounded_text};
use crate::domain::DomainResult;
use crate::model::{ConversationId, ConversationStatus, Message, SenderKind, SiteId};
use crate::store::{Appended, NewChatMessage};

impl Chat {
    /// One bot turn for a customer message on `site`: answer, count a
    /// miss, or hand off. A bot that errs or is slower than the timeout
    /// hands off too.
    pub(super) async fn bot_turn(
        self: &Arc<Self>,
        message: &Message,
        site_id: SiteId,
    ) -> DomainResult<()> {
        let conversation_id = message.conversation_id;
        // A file without words gives the bot nothing to answer; the file
        // stays in the conversation for the person who takes it over.
        if message.body.is_empty() {
            return Ok(());
        }
        if asks_for_a_person(&message.body) {
            return self
                .handoff(conversation_id, HandoffReason::CustomerAsked)
                .await;
        }
        let turn = BotTurn {
            conversation_id,
            site_id,
            text: &message.body,
        };
        let started = Instant::now();
        let reply = tokio::time::timeout(self.config.bot_timeout, self.bot.reply(turn)).await;
        self.metrics.bot_latency.observe(started.elapsed());
        if !matches!(reply, Ok(Ok(_))) {
            self.metrics.bot_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            bot = self.bot.name(),
            ms = started.elapsed().as_millis() as u64,
            "bot answered"
        );
        let bot_msg_id = format!("bot:{}", message.client_msg_id);
        match reply {
            Ok(Ok(BotReply::Answer { text, options })) => {
                self.store.reset_bot_misses(conversation_id).await?;
                self.bot_says(conversation_id, &bot_msg_id, &text, options)
                    .await
            }
            Ok(Ok(BotReply::NotUnderstood { text })) => {
                let misses = self.store.count_bot_miss(conversation_id).await?;
                if misses >= self.config.bot_miss_limit {
                    self.handoff(conversation_id, HandoffReason::BotMissed)
                        .await
                } else {
                    self.bot_says(conversation_id, &bot_msg_id, &text, Vec::new())
                        .await
                }
            }
            Ok(Ok(BotReply::Handoff { text, note })) => {
                self.bot_says(conversation_id, &bot_msg_id, &text, Vec::new())
                    .await?;
                self.handoff(conversation_id, HandoffReason::BotHandedOff)
                    .await?;
                // What the bot tells the agent stays with the staff.
                match note {
                    Some(note) => {
                        let id = format!("botnote:{}", message.client_msg_id);
                        let note = format!("From the assistant: {note}");
                        self.staff_note(conversation_id, &id, &bounded_text(&note))
                            .await
                    }
                    None => Ok(()),
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(conversation = conversation_id.0, error = %e, "bot failed; handing off");
                self.handoff(conversation_id, HandoffReason::BotFailed)
                    .await
            }
            Err(_) => {
                tracing::warn!(
                    conversation = conversation_id.0,
                    "bot timed out; handing off"
                );
                self.handoff(conversation_id, HandoffReason::BotFailed)
                    .await
            }
        }
    }

    /// A bot message, with the buttons it offers (bounded here: they come
    /// from the bot, and are stored and sent to customers); refused by the
    /// store once a person is involved.
    pub(super) async fn bot_says(
        &self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        text: &str,
        options: Vec<String>,
    ) -> DomainResult<()> {
        let options = bounded_options(&options);
        let text = bounded_text(text);
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    sender_kind: SenderKind::Bot,
                    sender_user_id: None,
                    sender_name: "Assistant",
                    body: &text,
                    private: false,
                    client_msg_id,
                    only_in: Some(&[ConversationStatus::Bot]),
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options: &options,
                },
            )
            .await?;
        if let Appended::New(message, _) = appended {
            self.publish_message(&message).await;
        }
        Ok(())
    }

    /// A private note by Careline itself (e.g. the bot's handoff message).
    pub(super) async fn staff_note(
        &self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> DomainResult<()> {
        self.careline_says(conversation_id, client_msg_id, text, true)
            .await
    }

    pub(super) async fn system_says(
        &self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> DomainResult<()> {
        self.careline_says(conversation_id, client_msg_id, text, false)
            .await
    }

    /// A message from Careline itself, public or private, published once
    /// (a retry with the same client_msg_id stores and publishes nothing).
    pub(super) async fn careline_says(
        &self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        text: &str,
        private: bool,
    ) -> DomainResult<()> {
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    sender_kind: SenderKind::System,
                    sender_user_id: None,
                    sender_name: "Careline",
                    body: text,
                    private,
                    client_msg_id,
                    only_in: None,
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options: &[],
                },
            )
            .await?;
        if let Appended::New(message, _) = appended {
            self.publish_message(&message).await;
        }
        Ok(())
    }
}
