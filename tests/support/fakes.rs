//! Local fakes of the outside services, checking requests the way the real
//! ones do: SendGrid v3 (`/v3/mail/send`) and IBM Watson Assistant v2 with
//! IAM token exchange. Each is told how to answer, request by request.
//! And for the egress policy: a canary that counts every connection made
//! to it, and a server that redirects everything elsewhere.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, post};
use careline::config::RawConfig;
use serde_json::{Value, json};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

// ---------- SendGrid ----------

pub const SENDGRID_KEY: &str = "SG.test-key";

/// How the fake answers one request.
#[derive(Clone, Debug)]
pub enum SendGridReply {
    Accept,
    RateLimited { reset_in_secs: u64 },
    ServerError,
    Reject(&'static str),
}

#[derive(Default)]
struct SendGridState {
    script: VecDeque<SendGridReply>,
    requests: Vec<Value>,
    accepted: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeSendGrid {
    pub base: String,
    state: Arc<Mutex<SendGridState>>,
}

impl FakeSendGrid {
    pub async fn start() -> FakeSendGrid {
        let state = Arc::new(Mutex::new(SendGridState::default()));
        let router = Router::new()
            .route("/v3/mail/send", post(sendgrid_send))
            .with_state(state.clone());
        let addr = serve(router).await;
        FakeSendGrid {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// The next answers, in order; afterwards every request is accepted.
    pub fn script(&self, replies: &[SendGridReply]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().cloned());
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Emails SendGrid took (answered 202).
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Waits until `n` emails were accepted (10 s at most).
    pub async fn wait_accepted(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "SendGrid accepted {} emails, expected {n}; requests: {:#?}",
            self.accepted().len(),
            self.requests()
        );
    }
}

fn sendgrid_error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "field": field, "help": null}]})),
    )
        .into_response()
}

/// Checks what the real API checks: the bearer key, and the JSON shape of
/// a v3 mail/send request.
async fn sendgrid_send(
    State(state): State<Arc<Mutex<SendGridState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {SENDGRID_KEY}") {
        return sendgrid_error(
            StatusCode::UNAUTHORIZED,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
        );
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return sendgrid_error(StatusCode::BAD_REQUEST, "Bad Request", None);
    };
    state.lock().unwrap().requests.push(request.clone());
    let to_ok = request["personalizations"][0]["to"][0]["email"]
        .as_str()
        .is_some_and(|e| e.contains('@'));
    if !to_ok {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            "The to array is required for all personalization objects",
            Some("personalizations.0.to"),
        );
    }
    if !request["from"]["email"]
        .as_str()
        .is_some_and(|e| e.contains('@'))
    {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            "The from email does not contain a valid address.",
            Some("from.email"),
        );
    }
    if request["subject"].as_str().is_none_or(str::is_empty) {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            "The subject is required.",
            Some("subject"),
        );
    }
    let content = request["content"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = content.iter().filter_map(|c| c["type"].as_str()).collect();
    if types.first() != Some(&"text/plain") {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            "If present, text/plain must be first, followed by text/html.",
            Some("content"),
        );
    }
    let reply = state
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(SendGridReply::Accept);
    match reply {
        SendGridReply::Accept => {
            state.lock().unwrap().accepted.push(request);
            StatusCode::ACCEPTED.into_response()
        }
        SendGridReply::RateLimited { reset_in_secs } => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + reset_in_secs;
            let mut response =
                sendgrid_error(StatusCode::TOO_MANY_REQUESTS, "too many requests", None);
            let h = response.headers_mut();
            h.insert("x-ratelimit-limit", "600".parse().unwrap());
            h.insert("x-ratelimit-remaining", "0".parse().unwrap());
            h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
            response
        }
        SendGridReply::ServerError => {
            sendgrid_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }
        SendGridReply::Reject(message) => {
            sendgrid_error(StatusCode::BAD_REQUEST, message, Some("from"))
        }
    }
}

// ---------- Watson Assistant v2 + IAM ----------

pub const WATSON_KEY: &str = "watson-api-key";
pub const WATSON_ASSISTANT: &str = "assistant-123";
pub const WATSON_VERSION: &str = "2021-11-27";

/// What the fake assistant does with the next message.
#[derive(Clone, Debug)]
pub enum WatsonReply {
    /// `output.generic` items as given, with an intent of that confidence.
    Generic(Value, f64),
    /// The session expired: 404 until a new one is created.
    SessionExpired,
    ServerError,
    RateLimited,
    /// Answers after this long (to trip the bot timeout).
    Slow(Duration),
    /// A well-formed answer whose text is this many bytes long.
    Huge(usize),
}

#[derive(Default)]
struct WatsonState {
    script: VecDeque<WatsonReply>,
    tokens_issued: usize,
    live_token: Option<String>,
    sessions: Vec<String>,
    expired: Vec<String>,
    messages: Vec<(String, String)>,
    requests: usize,
}

#[derive(Clone)]
pub struct FakeWatson {
    pub base: String,
    state: Arc<Mutex<WatsonState>>,
}

impl FakeWatson {
    pub async fn start() -> FakeWatson {
        let state = Arc::new(Mutex::new(WatsonState::default()));
        let router = Router::new()
            .route("/identity/token", post(iam_token))
            .route("/v2/assistants/{assistant}/sessions", post(create_session))
            .route(
                "/v2/assistants/{assistant}/sessions/{session}",
                delete(delete_session),
            )
            .route(
                "/v2/assistants/{assistant}/sessions/{session}/message",
                post(message),
            )
            .with_state(state.clone());
        let addr = serve(router).await;
        FakeWatson {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Lets an app call this fake as an install lets it call an internal
    /// Watson: its loopback address and port listed in
    /// `egress_allowed_hosts` (and plain http allowed, the fake has no TLS).
    pub fn allow(&self, config: &mut RawConfig) {
        let address = self.base.strip_prefix("http://").expect("an http base");
        allow_host(config, address);
    }

    pub fn script(&self, replies: &[WatsonReply]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().cloned());
    }

    /// Texts the assistant received, with their session.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn sessions_created(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens_issued
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

fn watson_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "code": status.as_u16()})),
    )
        .into_response()
}

/// IBM Cloud IAM: an API key for a bearer token (form-encoded request).
async fn iam_token(State(state): State<Arc<Mutex<WatsonState>>>, body: String) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if get("grant_type") != Some("urn:ibm:params:oauth:grant-type:apikey")
        || get("apikey") != Some(WATSON_KEY)
    {
        return (StatusCode::BAD_REQUEST, Json(json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}))).into_response();
    }
    let mut s = state.lock().unwrap();
    s.tokens_issued += 1;
    let token = format!("iam-token-{}", s.tokens_issued);
    s.live_token = Some(token.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Json(json!({
        "access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
        "expires_in": 3600, "expiration": now + 3600, "scope": "ibm openid"
    }))
    .into_response()
}

/// Checks the bearer token, the assistant id and the `version` parameter.
fn check(
    state: &WatsonState,
    headers: &HeaderMap,
    assistant: &str,
    query: &[(String, String)],
) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match &state.live_token {
        Some(token) if auth == format!("Bearer {token}") => {}
        _ => return Some(watson_error(StatusCode::UNAUTHORIZED, "Unauthorized")),
    }
    if assistant != WATSON_ASSISTANT {
        return Some(watson_error(StatusCode::NOT_FOUND, "Resource not found"));
    }
    if !query
        .iter()
        .any(|(k, v)| k == "version" && v == WATSON_VERSION)
    {
        return Some(watson_error(
            StatusCode::BAD_REQUEST,
            "Missing required query parameter: version",
        ));
    }
    None
}

async fn create_session(
    State(state): State<Arc<Mutex<WatsonState>>>,
    headers: HeaderMap,
    Path(assistant): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if let Some(refused) = check(&s, &headers, &assistant, &query) {
        return refused;
    }
    let id = format!("session-{}", s.sessions.len() + 1);
    s.sessions.push(id.clone());
    (StatusCode::CREATED, Json(json!({"session_id": id}))).into_response()
}

async fn delete_session(
    State(state): State<Arc<Mutex<WatsonState>>>,
    headers: HeaderMap,
    Path((assistant, session)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(refused) = check(&s, &headers, &assistant, &query) {
        return refused;
    }
    s.expired.push(session);
    Json(json!({})).into_response()
}

async fn message(
    State(state): State<Arc<Mutex<WatsonState>>>,
    headers: HeaderMap,
    Path((assistant, session)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    let reply = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        if let Some(refused) = check(&s, &headers, &assistant, &query) {
            return refused;
        }
        if !s.sessions.contains(&session) || s.expired.contains(&session) {
            return watson_error(StatusCode::NOT_FOUND, "Invalid Session");
        }
        if body["input"]["message_type"] != "text" || !body["input"]["text"].is_string() {
            return watson_error(StatusCode::BAD_REQUEST, "Invalid input");
        }
        let reply = s.script.pop_front().unwrap_or(WatsonReply::Generic(
            json!([{"response_type": "text", "text": "I am the fake assistant."}]),
            0.9,
        ));
        if matches!(reply, WatsonReply::SessionExpired) {
            s.expired.push(session.clone());
            return watson_error(StatusCode::NOT_FOUND, "Invalid Session");
        }
        s.messages.push((
            session.clone(),
            body["input"]["text"].as_str().unwrap().to_string(),
        ));
        reply
    };
    match reply {
        WatsonReply::Generic(generic, confidence) => Json(json!({
            "output": {
                "generic": generic,
                "intents": [{"intent": "fake_intent", "confidence": confidence}],
                "entities": []
            },
            "user_id": "fake-user",
            "context": {}
        }))
        .into_response(),
        WatsonReply::ServerError => {
            watson_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        WatsonReply::RateLimited => {
            watson_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        }
        WatsonReply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            Json(json!({"output": {"generic": [{"response_type": "text", "text": "too late"}], "intents": []}})).into_response()
        }
        WatsonReply::Huge(bytes) => Json(json!({
            "output": {"generic": [{"response_type": "text", "text": "x".repeat(bytes)}],
                       "intents": [{"intent": "fake_intent", "confidence": 0.9}]}
        }))
        .into_response(),
        WatsonReply::SessionExpired => unreachable!("handled above"),
    }
}

// ---------- Egress: a canary, a redirect ----------

/// Adds `entry` to the app's `egress_allowed_hosts` and allows http://.
pub fn allow_host(config: &mut RawConfig, entry: &str) {
    config.egress_allow_http = true;
    if !config.egress_allowed_hosts.is_empty() {
        config.egress_allowed_hosts.push(',');
    }
    config.egress_allowed_hosts.push_str(entry);
}

/// A listener that answers nothing and counts the connections made to it:
/// whatever Careline must not call points here.
pub struct Canary {
    pub port: u16,
    /// The same listener on `[::1]` (`None` where this machine has no IPv6).
    pub v6_port: Option<u16>,
    connections: Arc<AtomicUsize>,
}

impl Canary {
    pub async fn start() -> Canary {
        let connections = Arc::new(AtomicUsize::new(0));
        let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = tokio::net::TcpListener::bind("[::1]:0").await.ok();
        let v6_port = v6.as_ref().map(|l| l.local_addr().unwrap().port());
        for listener in std::iter::once(v4).chain(v6) {
            let connections = connections.clone();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    held.push(socket);
                }
            });
        }
        Canary {
            port,
            v6_port,
            connections,
        }
    }

    /// Connections accepted so far (after a moment for one in flight).
    pub async fn connections(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.connections.load(Ordering::SeqCst)
    }
}

/// A server that answers every request `302 Found` to `location`; its
/// address, and the count of requests it answered.
pub async fn redirecting_to(location: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let location = location.to_string();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    let addr = serve(Router::new().fallback(any(move || {
        let location = location.clone();
        count.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::FOUND, [("location", location)]).into_response() }
    })))
    .await;
    (addr, answered)
}
