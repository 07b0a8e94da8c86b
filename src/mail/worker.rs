//! The outbox delivery worker. Every instance runs one; rows are claimed
//! atomically with a lease, so each email is attempted by one worker at a
//! time. Failures are retried with exponential backoff (or when SendGrid's
//! rate limit resets) until `max_attempts`, then marked failed for admins.

use std::sync::Arc;
use std::time::Duration;

use super::{Email, Mailer, SendError, templates, threading};
use crate::auth::Secret;
use crate::model::ConversationId;
use crate::store::{OutboxEmail, Store, now_ms};

#[derive(Clone)]
pub struct WorkerConfig {
    pub public_url: String,
    pub poll: Duration,
    pub max_attempts: i64,
    /// First retry delay; doubles each attempt, capped at an hour.
    pub backoff: Duration,
    pub threading: ThreadingConfig,
}

/// The emails to a customer about their conversation: the ones whose
/// answer by mail comes back into it.
const CUSTOMER_TEMPLATES: [&str; 3] = ["agent_reply", "ticket_opened", "ticket_resolved"];

/// What the threading headers are made from.
#[derive(Clone)]
pub struct ThreadingConfig {
    pub secret: Secret,
    /// The sender's address, whose domain the `Message-ID`s take.
    pub from: String,
    /// `mail_reply_address`: replies about a conversation go to its
    /// `+tag` variant; `None`, to the sender.
    pub reply_address: Option<String>,
}

impl ThreadingConfig {
    /// Sets `email`'s threading headers from outbox row `id`, its template
    /// and payload: a `conversation_id` names the conversation a customer's
    /// reply goes back to; an `in_reply_to` is the customer's email this
    /// answers. Emails to staff name the conversation in their `Message-ID`
    /// only: an agent answers in the console, not by mail.
    fn apply(&self, email: &mut Email, id: i64, template: &str, payload: &serde_json::Value) {
        let tag = payload["conversation_id"]
            .as_i64()
            .map(|c| threading::tag(&self.secret, ConversationId(c)));
        let threading = &mut email.threading;
        threading.message_id = Some(threading::message_id(
            id,
            tag.as_deref(),
            threading::domain_of(&self.from),
        ));
        threading.reply_to = tag
            .as_deref()
            .filter(|_| CUSTOMER_TEMPLATES.contains(&template))
            .zip(self.reply_address.as_deref())
            .map(|(tag, base)| threading::reply_address(base, tag));
        threading.in_reply_to = payload["in_reply_to"]
            .as_str()
            .filter(|id| threading::is_message_id(id))
            .map(str::to_string);
        threading.auto_replied = threading.in_reply_to.is_some();
    }
}

/// How long a claimed email is this worker's before another may take it.
const LEASE_MS: i64 = 120_000;
const BATCH: i64 = 10;

pub fn spawn(
    store: Store,
    mailer: Arc<dyn Mailer>,
    config: WorkerConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.claim_due_emails(BATCH, LEASE_MS).await {
                Ok(batch) if !batch.is_empty() => {
                    for email in batch {
                        deliver(&store, mailer.as_ref(), &config, email).await;
                    }
                    continue; // there may be more due right now
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the outbox"),
            }
            tokio::time::sleep(config.poll).await;
        }
    })
}

/// Delay before attempt `attempts + 1`: backoff × 2^(attempts-1), at most an hour.
fn backoff(config: &WorkerConfig, attempts: i64) -> Duration {
    let exponent = (attempts - 1).clamp(0, 20) as u32;
    config
        .backoff
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(Duration::from_secs(3600))
}

async fn deliver(store: &Store, mailer: &dyn Mailer, config: &WorkerConfig, email: OutboxEmail) {
    let payload = serde_json::from_str(&email.payload).unwrap_or(serde_json::Value::Null);
    let mut rendered = match templates::render(
        &email.template,
        &payload,
        &email.to_email,
        &config.public_url,
    ) {
        Ok(rendered) => rendered,
        Err(e) => {
            tracing::error!(id = email.id, error = %e, "email cannot be rendered; giving up");
            let _ = store.email_failed(email.id, &e.to_string()).await;
            return;
        }
    };
    config
        .threading
        .apply(&mut rendered, email.id, &email.template, &payload);
    let outcome = mailer.send(&rendered).await;
    let recorded = match outcome {
        Ok(()) => {
            tracing::info!(id = email.id, template = %email.template, mailer = mailer.name(), "email delivered");
            store.email_sent(email.id).await
        }
        Err(SendError::Rejected(reason)) => {
            tracing::warn!(id = email.id, %reason, "email rejected; giving up");
            store.email_failed(email.id, &reason).await
        }
        Err(SendError::Retry { reason, .. }) if email.attempts >= config.max_attempts => {
            tracing::warn!(id = email.id, attempts = email.attempts, %reason, "email failed too often; giving up");
            store
                .email_failed(
                    email.id,
                    &format!("gave up after {} attempts: {reason}", email.attempts),
                )
                .await
        }
        Err(SendError::Retry { after, reason }) => {
            let wait = after.unwrap_or_else(|| backoff(config, email.attempts));
            tracing::info!(id = email.id, attempts = email.attempts, ?wait, %reason, "email will be retried");
            store
                .email_retry(email.id, now_ms() + wait.as_millis() as i64, &reason)
                .await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the email is tried again: at least once.
        tracing::warn!(id = email.id, error = %e, "could not record the email's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = WorkerConfig {
            public_url: String::new(),
            poll: Duration::from_secs(1),
            max_attempts: 8,
            backoff: Duration::from_secs(10),
            threading: ThreadingConfig {
                secret: Secret::new("a-test-secret-of-enough-length-0123456789"),
                from: "support@example.com".into(),
                reply_address: None,
            },
        };
        assert_eq!(backoff(&config, 1), Duration::from_secs(10));
        assert_eq!(backoff(&config, 2), Duration::from_secs(20));
        assert_eq!(backoff(&config, 4), Duration::from_secs(80));
        assert_eq!(backoff(&config, 30), Duration::from_secs(3600));
    }

    #[test]
    fn only_a_customers_email_carries_the_reply_address() {
        let threading = ThreadingConfig {
            secret: Secret::new("a-test-secret-of-enough-length-0123456789"),
            from: "support@shop.example".into(),
            reply_address: Some("help@shop.example".into()),
        };
        let payload = serde_json::json!({"conversation_id": 42, "in_reply_to": "<a@b>"});
        let mut email = Email {
            to: "grace@example.com".into(),
            subject: String::new(),
            text: String::new(),
            html: String::new(),
            threading: Default::default(),
        };
        threading.apply(&mut email, 7, "agent_reply", &payload);
        let reply_to = email.threading.reply_to.clone().unwrap();
        assert!(reply_to.starts_with("help+c42-"), "{reply_to}");
        assert!(
            email
                .threading
                .message_id
                .as_deref()
                .unwrap()
                .starts_with("<o7.c42-")
        );
        assert_eq!(email.threading.in_reply_to.as_deref(), Some("<a@b>"));
        assert!(email.threading.auto_replied);
        // To an agent: threaded, but answered in the console.
        threading.apply(&mut email, 8, "agent_assigned", &payload);
        assert_eq!(email.threading.reply_to, None);
        assert!(
            email
                .threading
                .message_id
                .as_deref()
                .unwrap()
                .starts_with("<o8.c42-")
        );
    }
}
