//! The webhook worker, one per instance: it fans the journal out into
//! deliveries and sends the due ones, signed, through the egress policy.
//! Deliveries are claimed with a lease longer than a delivery may take, so
//! a live worker always records its attempt before another may try, and a
//! worker that dies leaves its deliveries to be tried again when the lease
//! ends: at least once, never twice at the same time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::fan_out;
use super::signing::{SIGNATURE_HEADER, signature_header};
use crate::auth::Secret;
use crate::domain::chat::Chat;
use crate::egress::{Egress, EgressError, Limits, Policy};
use crate::store::{AfterFailure, Attempt, DueDelivery, NewEmail, Store, now_ms};

#[derive(Clone)]
pub struct WorkerConfig {
    pub public_url: String,
    pub poll: Duration,
    /// The first retry's delay; see [`backoff`].
    pub retry: Duration,
    pub timeout: Duration,
    pub disable_after: i64,
}

/// Deliveries claimed at a time (sent at once, to different endpoints or
/// conversations: the claim never takes two of one endpoint's conversation).
const BATCH: i64 = 20;
/// An answer is read up to this size (its start is kept for the log);
/// receivers answer with a few bytes.
const MAX_ANSWER: usize = 64 * 1024;
/// Characters of an answer kept in the delivery log.
const EXCERPT: usize = 300;
/// The lease beyond the delivery's own timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The delay before the attempt after `attempts` failed ones: `retry` × 1,
/// 3, 12, 60, 180, 360, then 720 (10 s, 30 s, 2 min, 10 min, 30 min, 1 h,
/// 2 h with the default 10 s), so that a receiver down for a day is tried
/// about twenty times, and turned off before (`webhook_disable_after`).
pub fn backoff(retry: Duration, attempts: i64) -> Duration {
    const STEPS: [u32; 7] = [1, 3, 12, 60, 180, 360, 720];
    let step = STEPS[(attempts.max(1) as usize - 1).min(STEPS.len() - 1)];
    retry.saturating_mul(step)
}

pub fn spawn(
    chat: Arc<Chat>,
    secret: Secret,
    policy: Policy,
    config: WorkerConfig,
) -> tokio::task::JoinHandle<()> {
    let egress = policy.client(Limits {
        timeout: config.timeout,
        max_answer_bytes: MAX_ANSWER,
    });
    let lease_ms = (config.timeout + LEASE_MARGIN).as_millis() as i64;
    tokio::spawn(async move {
        loop {
            let mut busy = false;
            match fan_out::fan_out(&chat).await {
                Ok(taken) => busy |= taken > 0,
                Err(e) => tracing::warn!(error = %e, "could not fan out webhook events"),
            }
            match chat.store().claim_webhook_deliveries(BATCH, lease_ms).await {
                Ok(batch) if !batch.is_empty() => {
                    busy = true;
                    let sends = batch
                        .into_iter()
                        .map(|delivery| deliver(chat.store(), &egress, &secret, &config, delivery));
                    futures_util::future::join_all(sends).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the webhook deliveries"),
            }
            if !busy {
                tokio::time::sleep(config.poll).await;
            }
        }
    })
}

async fn deliver(
    store: &Store,
    egress: &Egress,
    secret: &Secret,
    config: &WorkerConfig,
    delivery: DueDelivery,
) {
    let attempt = attempt(egress, secret, &delivery).await;
    let failures = config.disable_after;
    let after = AfterFailure {
        next_attempt_at: now_ms() + backoff(config.retry, delivery.attempts).as_millis() as i64,
        disable_after: failures,
        disabled_reason: format!(
            "Turned off after {failures} failed deliveries in a row; the last: {}",
            attempt.error
        ),
        email: NewEmail {
            to: String::new(),
            template: "webhook_disabled",
            payload: json!({
                "url": delivery.url,
                "failures": failures,
                "error": attempt.error,
                "link": format!("{}/admin/webhooks/{}", config.public_url, delivery.endpoint_id),
            }),
        },
    };
    // The URL may carry the receiver's own token: it is not logged.
    match store
        .record_webhook_attempt(&delivery, &attempt, after)
        .await
    {
        Ok(true) => tracing::warn!(
            endpoint = delivery.endpoint_id,
            failures,
            "webhook endpoint turned off after failing in a row; admins emailed"
        ),
        Ok(false) if attempt.delivered => tracing::debug!(
            endpoint = delivery.endpoint_id,
            event = delivery.event_id,
            "webhook delivered"
        ),
        Ok(false) => tracing::info!(
            endpoint = delivery.endpoint_id,
            event = delivery.event_id,
            attempts = delivery.attempts,
            error = %attempt.error,
            "webhook delivery failed; it will be retried"
        ),
        // The lease runs out and it is tried again: at least once.
        Err(e) => tracing::warn!(error = %e, "could not record a webhook attempt"),
    }
}

/// One POST of the frozen body, signed now.
async fn attempt(egress: &Egress, secret: &Secret, delivery: &DueDelivery) -> Attempt {
    let failed = |status: Option<i64>, latency_ms: i64, excerpt: String, error: String| Attempt {
        status,
        latency_ms,
        excerpt,
        error,
        delivered: false,
    };
    let Some(signing_secret) = secret.open(&delivery.secret_sealed) else {
        return failed(
            None,
            0,
            String::new(),
            "the endpoint's secret cannot be read with this server's secret_key \
             (was it changed?); register the endpoint again"
                .into(),
        );
    };
    let signature = signature_header(&signing_secret, now_ms() / 1000, &delivery.body);
    let started = Instant::now();
    let sent = egress
        .send(reqwest::Method::POST, &delivery.url, |request| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::USER_AGENT, "Careline-Webhooks/1")
                .header(SIGNATURE_HEADER, signature)
                .header("Careline-Event-Id", delivery.event_id.to_string())
                .header("Careline-Event-Type", delivery.kind.as_str())
                .body(delivery.body.clone())
        })
        .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match sent {
        Ok(answer) => {
            let status = answer.status.as_u16();
            let excerpt: String = String::from_utf8_lossy(&answer.body)
                .chars()
                .take(EXCERPT)
                .collect();
            if answer.status.is_success() {
                Attempt {
                    status: Some(i64::from(status)),
                    latency_ms,
                    excerpt,
                    error: String::new(),
                    delivered: true,
                }
            } else {
                let error = format!(
                    "the endpoint answered {status}; only a 2xx answer counts as delivered"
                );
                failed(Some(i64::from(status)), latency_ms, excerpt, error)
            }
        }
        Err(e) => {
            let status = match &e {
                EgressError::Redirected { status, .. } => Some(i64::from(status.as_u16())),
                _ => None,
            };
            failed(status, latency_ms, String::new(), e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_720_times_the_first() {
        let retry = Duration::from_secs(10);
        assert_eq!(backoff(retry, 1), Duration::from_secs(10));
        assert_eq!(backoff(retry, 2), Duration::from_secs(30));
        assert_eq!(backoff(retry, 3), Duration::from_secs(120));
        assert_eq!(backoff(retry, 7), Duration::from_secs(7200));
        assert_eq!(backoff(retry, 40), Duration::from_secs(7200));
    }
}
