//! Registering endpoints: a URL the egress policy allows, at least one known
//! event type, and a secret Careline makes, shows once and keeps sealed.

use super::{EVENT_TYPES, PING, fan_out};
use crate::auth::{Secret, random_token};
use crate::domain::DomainError;
use crate::egress::Policy;
use crate::store::{EndpointSettings, Store};

/// Longest URL taken (receivers' URLs are short; this bounds the row).
const MAX_URL: usize = 2000;

/// What an admin enters for an endpoint.
pub struct Settings {
    pub url: String,
    pub events: Vec<String>,
    pub include_private: bool,
}

/// A new endpoint and its secret, shown to the admin this once.
pub struct Registered {
    pub id: i64,
    pub secret: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        message: message.into(),
    }
}

/// The settings checked: the URL by the egress policy (what can be told
/// without DNS; every delivery checks again after it), the events known.
fn checked<'a>(
    policy: &Policy,
    settings: &'a Settings,
) -> Result<(&'a str, Vec<&'static str>), DomainError> {
    let url = settings.url.trim();
    if url.is_empty() {
        return Err(invalid(
            "url",
            "enter the URL Careline posts events to, like https://example.com/careline-hook",
        ));
    }
    if url.len() > MAX_URL {
        return Err(invalid(
            "url",
            format!("the URL is longer than {MAX_URL} characters"),
        ));
    }
    policy
        .check(url)
        .map_err(|e| invalid("url", e.to_string()))?;
    let mut events = Vec::new();
    for wanted in &settings.events {
        let Some((known, _)) = EVENT_TYPES.iter().find(|(name, _)| name == wanted) else {
            return Err(invalid(
                "events",
                format!("`{wanted}` is not an event type Careline sends"),
            ));
        };
        if !events.contains(known) {
            events.push(*known);
        }
    }
    if events.is_empty() {
        return Err(invalid("events", "choose at least one event to send"));
    }
    Ok((url, events))
}

pub async fn create(
    store: &Store,
    secret: &Secret,
    policy: &Policy,
    settings: &Settings,
) -> Result<Registered, DomainError> {
    let (url, events) = checked(policy, settings)?;
    let signing_secret = format!("whsec_{}", random_token(24));
    let id = store
        .create_webhook_endpoint(
            &EndpointSettings {
                url,
                events: &events,
                include_private: settings.include_private,
            },
            &secret.seal(&signing_secret),
        )
        .await?;
    tracing::info!(endpoint = id, "webhook endpoint registered");
    Ok(Registered {
        id,
        secret: signing_secret,
    })
}

pub async fn update(
    store: &Store,
    policy: &Policy,
    id: i64,
    settings: &Settings,
) -> Result<(), DomainError> {
    let (url, events) = checked(policy, settings)?;
    store
        .update_webhook_endpoint(
            id,
            &EndpointSettings {
                url,
                events: &events,
                include_private: settings.include_private,
            },
        )
        .await?;
    Ok(())
}

pub async fn delete(store: &Store, id: i64) -> Result<(), DomainError> {
    store.delete_webhook_endpoint(id).await?;
    Ok(())
}

pub async fn enable(store: &Store, id: i64) -> Result<(), DomainError> {
    store
        .webhook_endpoint(id)
        .await?
        .ok_or(DomainError::NotFound)?;
    store.enable_webhook_endpoint(id).await?;
    Ok(())
}

/// Queues a `ping` to this endpoint only; returns its event id.
pub async fn send_test(store: &Store, id: i64) -> Result<i64, DomainError> {
    let endpoint = store
        .webhook_endpoint(id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if !endpoint.enabled {
        return Err(DomainError::Conflict(
            "this endpoint is turned off; turn it back on first, then send a test event".into(),
        ));
    }
    let event = store
        .queue_webhook_ping(id, |event| {
            let data = serde_json::json!({
                "endpoint_id": id,
                "message": "A test event from Careline: the endpoint is reachable and the signature checks out.",
            });
            fan_out::envelope(event.id, PING, event.created_at, data)
        })
        .await?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, events: &[&str]) -> Settings {
        Settings {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            include_private: false,
        }
    }

    #[test]
    fn a_form_is_checked_before_anything_is_stored() {
        let policy = Policy::new(false, Vec::new());
        let ok = settings("https://hooks.example.com/x", &["ticket.created"]);
        assert!(checked(&policy, &ok).is_ok());
        let refused = |s: Settings, field: &str, words: &str| {
            let error = checked(&policy, &s).expect_err("refused");
            let DomainError::Invalid { field: f, message } = error else {
                panic!("not a form error");
            };
            assert_eq!(f, field);
            assert!(message.contains(words), "{message}");
        };
        refused(
            settings("http://127.0.0.1:9/x", &["ticket.created"]),
            "url",
            "https",
        );
        refused(
            settings("https://127.0.0.1:9/x", &["ticket.created"]),
            "url",
            "egress_allowed_hosts",
        );
        refused(
            settings("https://hooks.example.com", &[]),
            "events",
            "at least one",
        );
        refused(
            settings("https://hooks.example.com", &["ticket.deleted"]),
            "events",
            "ticket.deleted",
        );
    }
}
