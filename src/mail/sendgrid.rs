//! SendGrid v3 `POST /v3/mail/send`: API key as a bearer token, 202 on
//! success. A 429 is retried after `X-RateLimit-Reset`; other 4xx are
//! rejections (the reasons come from the error body); 5xx and network
//! errors are retried.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{BoxFuture, Email, Mailer, SendError};

pub struct SendGrid {
    http: reqwest::Client,
    url: String,
    api_key: String,
    from_email: String,
    from_name: String,
}

impl SendGrid {
    /// `base_url` is `https://api.sendgrid.com` (or a fake in tests).
    pub fn new(base_url: &str, api_key: &str, from_email: &str, from_name: &str) -> SendGrid {
        SendGrid {
            http: crate::adapter::http_client(Duration::from_secs(15)),
            url: format!("{}/v3/mail/send", base_url.trim_end_matches('/')),
            api_key: api_key.to_string(),
            from_email: from_email.to_string(),
            from_name: from_name.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    message: String,
    #[serde(default)]
    field: Option<String>,
}

/// "message (field), message" from SendGrid's error body, or the raw text.
fn reasons(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|e| match &e.field {
                Some(field) => format!("{} ({field})", e.message),
                None => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.chars().take(300).collect(),
    }
}

/// How long to wait after a 429: until `X-RateLimit-Reset` (a Unix time),
/// else `Retry-After` seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    if let Some(reset) = number("x-ratelimit-reset") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    number("retry-after").map(Duration::from_secs)
}

impl Mailer for SendGrid {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let mut body = json!({
                "personalizations": [{"to": [{"email": email.to}]}],
                "from": {"email": self.from_email, "name": self.from_name},
                "subject": email.subject,
                // SendGrid wants text/plain before text/html.
                "content": [
                    {"type": "text/plain", "value": email.text},
                    {"type": "text/html", "value": email.html},
                ],
            });
            let threading = &email.threading;
            if let Some(reply_to) = &threading.reply_to {
                body["reply_to"] = json!({ "email": reply_to });
            }
            let mut headers = serde_json::Map::new();
            if let Some(id) = &threading.message_id {
                headers.insert("Message-ID".into(), json!(id));
            }
            if let Some(id) = &threading.in_reply_to {
                headers.insert("In-Reply-To".into(), json!(id));
                headers.insert("References".into(), json!(id));
            }
            if threading.auto_replied {
                headers.insert("Auto-Submitted".into(), json!("auto-replied"));
            }
            if !headers.is_empty() {
                body["headers"] = headers.into();
            }
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.api_key)
                .json(&body)
                .send()
                .await
                .map_err(|e| SendError::Retry {
                    after: None,
                    reason: format!("SendGrid unreachable: {e}"),
                })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let after = retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            let reason = format!("SendGrid answered {}: {}", status.as_u16(), reasons(&text));
            match status.as_u16() {
                429 => Err(SendError::Retry { after, reason }),
                500..=599 => Err(SendError::Retry {
                    after: None,
                    reason,
                }),
                _ => Err(SendError::Rejected(reason)),
            }
        })
    }

    fn name(&self) -> &'static str {
        "sendgrid"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarised() {
        let body = r#"{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":null}]}"#;
        assert_eq!(
            reasons(body),
            "The from address does not match a verified Sender Identity. (from)"
        );
        assert_eq!(reasons("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn rate_limit_reset_is_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        headers.insert("x-ratelimit-reset", soon.to_string().parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait >= Duration::from_secs(28) && wait <= Duration::from_secs(31),
            "{wait:?}"
        );
    }
}
