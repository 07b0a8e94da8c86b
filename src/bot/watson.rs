//! IBM Watson Assistant v2 as the bot: a session per conversation (kept in
//! the database, so any instance continues it; re-created when Watson says
//! it expired), each customer message sent to `…/message`, and the answer
//! mapped to Careline's bot replies. Authentication is an IAM bearer token,
//! fetched with the API key and refreshed before it expires.
//!
//! Both URLs are an admin's, so every call goes through the egress policy
//! (`crate::egress`): public https:// addresses only, unless the operator
//! lists an internal one. Failures are bounded: every request has a
//! timeout and an answer size limit, 429 and 5xx are retried with backoff
//! (a refusal by the policy is not), and a circuit breaker stops calling a
//! Watson that keeps failing (the caller then falls back to a person or
//! the FAQ bot).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use crate::egress::{Egress, Limits, Policy};
use crate::model::ConversationId;
use crate::model::text::{at_most, clean_line};
use crate::store::Store;

#[derive(Clone, PartialEq)]
pub struct WatsonSettings {
    /// Service URL, e.g. `https://api.eu-de.assistant.watson.cloud.ibm.com/instances/…`.
    pub url: String,
    /// Assistant (or, with the new experience, environment) id.
    pub assistant_id: String,
    pub api_key: String,
    /// The API's `version` date, e.g. `2021-11-27`.
    pub version: String,
    /// IAM token endpoint, `https://iam.cloud.ibm.com/identity/token`.
    pub iam_url: String,
    /// Below this intent confidence an answer counts as a miss.
    pub min_confidence: f64,
}

impl std::fmt::Debug for WatsonSettings {
    // The API key never reaches a log, not even through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatsonSettings")
            .field("url", &self.url)
            .field("assistant_id", &self.assistant_id)
            .field("api_key", &"***")
            .field("version", &self.version)
            .finish()
    }
}

/// After this many failed turns in a row the breaker opens…
const BREAKER_THRESHOLD: u32 = 5;
/// …for this long; then one turn is let through to try again.
const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// Retries of a request answered 429 or 5xx (with backoff).
const RETRIES: u32 = 2;

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct WatsonBot {
    http: Egress,
    settings: WatsonSettings,
    store: Store,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    breaker: Mutex<Breaker>,
}

#[derive(Debug)]
enum CallError {
    /// 404: the session is gone (expired or deleted).
    NotFound,
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotFound => write!(f, "Watson answered 404 Not Found"),
            CallError::Failed(reason) => write!(f, "{reason}"),
        }
    }
}

/// Longest one request may take, the lookup and the whole answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

impl WatsonBot {
    /// A Watson client calling the admin's URLs under `egress`.
    pub fn new(settings: WatsonSettings, store: Store, egress: &Policy) -> WatsonBot {
        WatsonBot {
            http: egress.client(Limits {
                timeout: REQUEST_TIMEOUT,
                max_answer_bytes: MAX_ANSWER_BYTES,
            }),
            settings,
            store,
            token: tokio::sync::Mutex::new(None),
            breaker: Mutex::new(Breaker::default()),
        }
    }

    /// An IAM bearer token, cached until a minute before it expires; the
    /// error is the reason, in words for the admin.
    async fn token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let answer = self
            .http
            .send(reqwest::Method::POST, &self.settings.iam_url, |request| {
                request.header("Accept", "application/json").form(&[
                    ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                    ("apikey", self.settings.api_key.as_str()),
                ])
            })
            .await
            .map_err(|e| format!("the IAM token URL: {e}"))?;
        let status = answer.status;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!(
                "IAM refused the API key ({status}): {}",
                their_words(&body["errorMessage"])
            ));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or("IAM answered without an access_token")?
            .to_string();
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600);
        let refresh_at = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }

    fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/v2/assistants/{}{}",
            self.settings.url.trim_end_matches('/'),
            self.settings.assistant_id,
            path
        )
    }

    /// One API call, retried with backoff when Watson answers 429 or 5xx
    /// or cannot be reached; never when the egress policy refused it.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let mut last = String::new();
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
            }
            let token = self.token().await.map_err(CallError::Failed)?;
            let sent = self
                .http
                .send(method.clone(), &self.endpoint(path), |request| {
                    let request = request
                        .query(&[("version", self.settings.version.as_str())])
                        .bearer_auth(&token);
                    match &body {
                        Some(body) => request.json(body),
                        None => request,
                    }
                })
                .await;
            let answer = match sent {
                Ok(answer) => answer,
                Err(e) if e.may_pass() => {
                    last = format!("the service URL: {e}");
                    continue;
                }
                Err(e) => return Err(CallError::Failed(format!("the service URL: {e}"))),
            };
            let status = answer.status;
            if status.as_u16() == 401 {
                // The token may have been revoked early: fetch a new one.
                *self.token.lock().await = None;
                last = "Watson refused the token (401)".into();
                continue;
            }
            if status.as_u16() == 404 {
                return Err(CallError::NotFound);
            }
            if status.as_u16() == 429 || status.is_server_error() {
                last = format!("Watson answered {status}");
                continue;
            }
            let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(CallError::Failed(format!(
                    "Watson answered {status}: {}",
                    their_words(&value["error"])
                )));
            }
            return Ok(value);
        }
        Err(CallError::Failed(last))
    }

    async fn create_session(&self) -> Result<String, CallError> {
        let created = self
            .call(reqwest::Method::POST, "/sessions", Some(json!({})))
            .await?;
        created["session_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CallError::Failed("Watson created a session without an id".into()))
    }

    /// Checks the settings end to end: token, a session created and
    /// deleted. The error says what failed, for the admin.
    pub async fn test_connection(&self) -> Result<(), String> {
        let session = self.create_session().await.map_err(|e| e.to_string())?;
        self.call(
            reqwest::Method::DELETE,
            &format!("/sessions/{session}"),
            None,
        )
        .await
        .map_err(|e| format!("a session was created but not deleted: {e}"))?;
        Ok(())
    }

    async fn converse(&self, turn: &BotTurn<'_>) -> Result<BotReply, BotError> {
        let session = match self
            .store
            .bot_session(turn.conversation_id)
            .await
            .map_err(|e| BotError::Unavailable(e.to_string()))?
        {
            Some(session) => session,
            None => self.new_session(turn.conversation_id).await?,
        };
        let message = json!({"input": {"message_type": "text", "text": turn.text}});
        let path = |session: &str| format!("/sessions/{session}/message");
        let answer = match self
            .call(
                reqwest::Method::POST,
                &path(&session),
                Some(message.clone()),
            )
            .await
        {
            Ok(answer) => answer,
            // Sessions expire after a few minutes of silence: start a new
            // one and try once more.
            Err(CallError::NotFound) => {
                let session = self.new_session(turn.conversation_id).await?;
                self.call(reqwest::Method::POST, &path(&session), Some(message))
                    .await
                    .map_err(|e| BotError::Unavailable(format!("Watson message failed: {e}")))?
            }
            Err(CallError::Failed(reason)) => return Err(BotError::Unavailable(reason)),
        };
        Ok(map_answer(&answer, self.settings.min_confidence))
    }

    async fn new_session(&self, conversation_id: ConversationId) -> Result<String, BotError> {
        let session = self
            .create_session()
            .await
            .map_err(|e| BotError::Unavailable(format!("cannot create a Watson session: {e}")))?;
        self.store
            .set_bot_session(conversation_id, Some(&session))
            .await
            .map_err(|e| BotError::Unavailable(e.to_string()))?;
        Ok(session)
    }

    fn breaker_open(&self) -> bool {
        let breaker = self.breaker.lock().expect("breaker lock");
        breaker
            .open_until
            .is_some_and(|until| Instant::now() < until)
    }

    fn record(&self, ok: bool) {
        let mut breaker = self.breaker.lock().expect("breaker lock");
        if ok {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            if breaker.failures >= BREAKER_THRESHOLD {
                tracing::warn!(
                    failures = breaker.failures,
                    "Watson keeps failing; not calling it for 30 s"
                );
                breaker.open_until = Some(Instant::now() + BREAKER_OPEN);
            }
        }
    }
}

/// Turns Watson's `output` into a Careline bot reply.
pub fn map_answer(answer: &Value, min_confidence: f64) -> BotReply {
    let output = &answer["output"];
    let mut texts: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut handoff: Option<Option<String>> = None;
    for item in output["generic"].as_array().into_iter().flatten() {
        let kind = item["response_type"].as_str().unwrap_or("");
        let field = |name: &str| {
            item[name]
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        match kind {
            "text" => texts.extend(field("text")),
            "option" => {
                texts.extend(field("title"));
                texts.extend(field("description"));
                options.extend(
                    item["options"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["label"].as_str().map(str::to_string)),
                );
            }
            "suggestion" => {
                texts.extend(field("title"));
                options.extend(
                    item["suggestions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["label"].as_str().map(str::to_string)),
                );
            }
            "image" => {
                let title = field("title").unwrap_or_else(|| "Image".into());
                if let Some(source) = field("source") {
                    texts.push(format!("{title}: {source}"));
                }
            }
            "connect_to_agent" => {
                handoff = Some(field("message_to_human_agent"));
            }
            // `pause` and anything newer: nothing to show.
            _ => {}
        }
    }
    let text = texts.join("\n\n");
    if let Some(note) = handoff {
        let text = if text.is_empty() {
            "Let me get a person to help you.".to_string()
        } else {
            text
        };
        return BotReply::Handoff { text, note };
    }
    let confidence = output["intents"][0]["confidence"].as_f64();
    let unsure = confidence.is_some_and(|c| c < min_confidence);
    if text.is_empty() || unsure {
        return BotReply::NotUnderstood {
            text: if text.is_empty() {
                super::faq::NOT_UNDERSTOOD.to_string()
            } else {
                text
            },
        };
    }
    BotReply::Answer { text, options }
}

impl Bot for WatsonBot {
    fn reply<'a>(&'a self, turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async move {
            if self.breaker_open() {
                return Err(BotError::Unavailable(
                    "Watson is failing; the circuit breaker is open".into(),
                ));
            }
            let result = self.converse(&turn).await;
            self.record(result.is_ok());
            result
        })
    }

    fn name(&self) -> &'static str {
        "watson"
    }
}

/// Watson's and IAM's answers are a few KiB; one past this is not read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The reason a service Careline was allowed to call gave in its error
/// field, as an admin may read it: one line, at most 200 characters.
fn their_words(reason: &Value) -> String {
    match reason.as_str().map(|r| clean_line(at_most(r, 200))) {
        Some(words) if !words.trim().is_empty() => words.trim().to_string(),
        _ => "no reason given".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_text_options_and_handoffs() {
        let answer = json!({"output": {
            "generic": [
                {"response_type": "text", "text": "Hello!"},
                {"response_type": "pause", "time": 500},
                {"response_type": "option", "title": "Pick one", "options": [
                    {"label": "Orders", "value": {"input": {"text": "orders"}}},
                    {"label": "Billing", "value": {"input": {"text": "billing"}}}
                ]}
            ],
            "intents": [{"intent": "greet", "confidence": 0.93}]
        }});
        assert_eq!(
            map_answer(&answer, 0.3),
            BotReply::Answer {
                text: "Hello!\n\nPick one".into(),
                options: vec!["Orders".into(), "Billing".into()]
            }
        );
        let handoff = json!({"output": {"generic": [
            {"response_type": "connect_to_agent", "message_to_human_agent": "Customer wants a refund", "agent_available": {"message": "x"}}
        ]}});
        assert_eq!(
            map_answer(&handoff, 0.3),
            BotReply::Handoff {
                text: "Let me get a person to help you.".into(),
                note: Some("Customer wants a refund".into())
            }
        );
        let unsure = json!({"output": {"generic": [{"response_type": "text", "text": "Maybe this?"}],
                                         "intents": [{"intent": "x", "confidence": 0.1}]}});
        assert!(matches!(
            map_answer(&unsure, 0.3),
            BotReply::NotUnderstood { .. }
        ));
        let empty = json!({"output": {"generic": []}});
        assert!(matches!(
            map_answer(&empty, 0.3),
            BotReply::NotUnderstood { .. }
        ));
    }
}
