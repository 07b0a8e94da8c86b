//! IBM Watson Assistant v2 as the bot: a session per conversation (kept in
//! the database, so any instance continues it; re-created when Watson says
//! it expired), each customer message sent to `…/message`, and the answer
//! mapped to Careline's bot replies. Authentication is an IAM bearer token,
//! fetched with the API key and refreshed before it expires.
//!
//! Failures are bounded: every request has a timeout, 429 and 5xx are
//! retried with backoff, and a circuit breaker stops calling a Watson that
//! keeps failing (the caller then falls back to a person or the FAQ bot).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use crate::model::ConversationId;
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
    http: reqwest::Client,
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

impl WatsonBot {
    pub fn new(settings: WatsonSettings, store: Store) -> WatsonBot {
        WatsonBot {
            http: crate::adapter::http_client(Duration::from_secs(4)),
            settings,
            store,
            token: tokio::sync::Mutex::new(None),
            breaker: Mutex::new(Breaker::default()),
        }
    }

    /// An IAM bearer token, cached until a minute before it expires.
    async fn token(&self) -> Result<String, BotError> {
        let mut cached = self.token.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(&self.settings.iam_url)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", self.settings.api_key.as_str()),
            ])
            .send()
            .await
            .map_err(|e| BotError::Unavailable(format!("IAM unreachable: {e}")))?;
        let status = response.status();
        let body = json_capped(response)
            .await
            .map_err(|e| BotError::Unavailable(format!("IAM's answer: {e}")))?;
        if !status.is_success() {
            let reason = body["errorMessage"].as_str().unwrap_or("no reason given");
            return Err(BotError::Unavailable(format!(
                "IAM refused the API key ({status}): {reason}"
            )));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| BotError::Unavailable("IAM answered without an access_token".into()))?
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
    /// or cannot be reached.
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
            let token = self
                .token()
                .await
                .map_err(|e| CallError::Failed(e.to_string()))?;
            let mut request = self
                .http
                .request(method.clone(), self.endpoint(path))
                .query(&[("version", self.settings.version.as_str())])
                .bearer_auth(&token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    last = format!("Watson unreachable: {e}");
                    continue;
                }
            };
            let status = response.status();
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
            let value = json_capped(response)
                .await
                .map_err(|e| CallError::Failed(format!("Watson's answer: {e}")))?;
            if !status.is_success() {
                let reason = value["error"].as_str().unwrap_or("no reason given");
                return Err(CallError::Failed(format!(
                    "Watson answered {status}: {reason}"
                )));
            }
            return Ok(value);
        }
        Err(CallError::Failed(last))
    }

    async fn create_session(&self) -> Result<String, BotError> {
        let created = self
            .call(reqwest::Method::POST, "/sessions", Some(json!({})))
            .await
            .map_err(|e| BotError::Unavailable(format!("cannot create a Watson session: {e:?}")))?;
        created["session_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| BotError::Unavailable("Watson created a session without an id".into()))
    }

    /// Checks the settings end to end: token, a session created and deleted.
    pub async fn test_connection(&self) -> Result<(), String> {
        let session = self.create_session().await.map_err(|e| e.to_string())?;
        self.call(
            reqwest::Method::DELETE,
            &format!("/sessions/{session}"),
            None,
        )
        .await
        .map_err(|e| format!("session created but not deleted: {e:?}"))?;
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
                    .map_err(|e| BotError::Unavailable(format!("Watson message failed: {e:?}")))?
            }
            Err(CallError::Failed(reason)) => return Err(BotError::Unavailable(reason)),
        };
        Ok(map_answer(&answer, self.settings.min_confidence))
    }

    async fn new_session(&self, conversation_id: ConversationId) -> Result<String, BotError> {
        let session = self.create_session().await?;
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

/// A response's body as JSON (`null` if it is not JSON), read chunk by chunk
/// and refused past [`MAX_ANSWER_BYTES`] rather than held in memory whole.
async fn json_capped(mut response: reqwest::Response) -> Result<Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cut off: {e}"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("larger than {MAX_ANSWER_BYTES} bytes, not read"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
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
