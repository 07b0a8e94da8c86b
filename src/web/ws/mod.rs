//! `/ws`: the one socket endpoint for visitors (widget) and agents
//! (console). The `Origin` is checked before the upgrade: visitors' against
//! their site's allowed origins (`?site=KEY`), agents' against Careline's own
//! origin, with their session cookie. Each socket has a reader (this task)
//! and a writer fed by a bounded queue.

mod account;
mod agent;
mod hello;
pub mod hub;
mod outbox;
mod resume;
mod session;
mod visitor;

use std::sync::Arc;
use std::task::Poll;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::{Duration, timeout};
use tracing::Instrument;

use super::AppState;
use super::session::session_token;
use crate::domain::accounts;
use crate::model::User;
use crate::protocol::MAX_FRAME_BYTES;
use crate::store::Site;
use hub::{AgentLink, KillSwitch, close};
use outbox::Outbox;

/// Pings go out at a third of the idle timeout, so a live client answers
/// (pong) well before the server gives up on it.
fn ping_every(idle: Duration) -> Duration {
    idle / 3
}

/// Longest one write may take to go out before the peer counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most frames written with one flush.
const WRITE_BATCH: usize = 32;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Deserialize)]
struct WsQuery {
    site: Option<String>,
}

/// Who the socket will be, as far as the upgrade request tells.
pub(crate) enum PreAuth {
    /// A widget on one of the site's pages; the visitor token comes in `hello`.
    Visitor(Site),
    /// An agent's console, logged in with the session cookie.
    Agent(User, String),
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    tracing::info!(why, "websocket upgrade refused");
    (status, why).into_response()
}

/// The origin (`scheme://host[:port]`) of a URL like `public_url`.
pub(crate) fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(scheme_end) => match url[scheme_end + 3..].find('/') {
            Some(path) => &url[..scheme_end + 3 + path],
            None => url,
        },
        None => url,
    }
}

/// Whether a page at `origin` may run the widget of `site`.
pub(crate) fn origin_allowed(state: &AppState, site: &Site, origin: &str) -> bool {
    origin == origin_of(&state.config().public_url)
        || site.allowed_origins.iter().any(|o| o == origin)
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return refuse(StatusCode::FORBIDDEN, "an Origin header is required");
    };
    let auth = match query.site {
        Some(key) => {
            let site = match state.store().site_by_key(&key).await {
                Ok(Some(site)) => site,
                Ok(None) => return refuse(StatusCode::FORBIDDEN, "unknown site"),
                Err(e) => {
                    tracing::error!(error = %e, "site lookup failed");
                    return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
                }
            };
            if !origin_allowed(&state, &site, origin) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "this origin may not open the chat of that site",
                );
            }
            if crate::domain::sites::takes_new_chats(&site).is_err() {
                return refuse(StatusCode::GONE, "this site no longer takes chats");
            }
            PreAuth::Visitor(site)
        }
        None => {
            if origin != origin_of(&state.config().public_url) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "the console must be opened from Careline itself",
                );
            }
            let Some(token) = session_token(&state, &headers) else {
                return refuse(StatusCode::FORBIDDEN, "log in first");
            };
            match accounts::session_user(state.store(), &token).await {
                Ok(Some(user)) if user.role.is_staff() => PreAuth::Agent(user, token),
                Ok(_) => return refuse(StatusCode::FORBIDDEN, "an agent session is required"),
                Err(e) => {
                    tracing::error!(error = %e, "session lookup failed");
                    return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
                }
            }
        }
    };
    // tungstenite's default 128 KiB read buffer per socket would dominate
    // the memory of idle sockets. Chat frames are small: 1 KiB reads them in
    // one go, and the buffer grows for the rare large frame (measured in
    // docs/benchmarks.md: 4 KiB cost 3 KiB more per idle socket).
    ws.read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(1024 * 1024)
        // Frames up to 4x the limit are read whole and refused with a clean
        // 1009; only beyond that does tungstenite cut the connection.
        .max_message_size(MAX_FRAME_BYTES * 4)
        .max_frame_size(MAX_FRAME_BYTES * 4)
        // The socket keeps the upgrade request's span (and so its id) in its logs.
        .on_upgrade(move |socket| run(socket, state, auth).instrument(tracing::Span::current()))
}

async fn run(socket: WebSocket, state: AppState, auth: PreAuth) {
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(state.config().ws_outbound_queue));
    let link = match &auth {
        PreAuth::Agent(user, _) => Some(AgentLink {
            agent: user.id,
            account_changed: Arc::new(Notify::new()),
        }),
        PreAuth::Visitor(_) => None,
    };
    let account_changed = link.as_ref().map(|l| l.account_changed.clone());
    let hub = state.hub().clone();
    let (id, kill) = hub.register(outbox.clone(), link);
    let writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        kill.clone(),
        ping_every(state.config().ws_idle_timeout),
    ));

    let mut session = session::Session::new(state.clone(), id, outbox, auth, account_changed);
    // The hello deadline counts from the upgrade: other frames do not extend it.
    let hello_by = tokio::time::Instant::now() + state.config().ws_hello_timeout;
    loop {
        let deadline = if session.needs_hello() {
            hello_by.saturating_duration_since(tokio::time::Instant::now())
        } else {
            state.config().ws_idle_timeout
        };
        let next = tokio::select! {
            _ = kill.fired() => break,
            next = timeout(deadline, stream.next()) => next,
        };
        let message = match next {
            Err(_) if session.needs_hello() => {
                kill.fire(close::POLICY);
                break;
            }
            Err(_) => {
                kill.fire(close::GOING_AWAY);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                kill.fire(close_code_for(&e.to_string()));
                break;
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) if text.len() > MAX_FRAME_BYTES => {
                kill.fire(close::TOO_BIG);
                break;
            }
            Message::Binary(data) if data.len() > MAX_FRAME_BYTES => {
                kill.fire(close::TOO_BIG);
                break;
            }
            Message::Text(text) => {
                // Boxed: handling a frame runs deep database futures; kept
                // inline they would size every idle socket's task for them.
                if !Box::pin(session.handle_text(text.as_str())).await {
                    break;
                }
            }
            Message::Binary(_) => Box::pin(session.refuse_binary()).await,
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => break,
        }
    }
    kill.fire(close::NORMAL);
    // Keep reading (and discarding) while the close frame goes out: closing
    // a TCP socket with unread input resets it, and the peer would lose the
    // close frame that tells it why.
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    let (_, _) = tokio::join!(timeout(Duration::from_secs(2), drain), writer);
    // Unregistered first, so that `finish` counts only the other sockets.
    Box::pin(hub.unregister(id)).await;
    Box::pin(session.finish()).await;
}

/// Writes `first`, and whatever else is already queued (up to
/// [`WRITE_BATCH`] frames in all), then flushes once: one syscall and one
/// TCP segment for a burst. Written by hand: the same as an async block made
/// every socket's writer task larger, 0.8 KiB per idle socket.
///
/// The frame taken from the queue but not yet handed to the sink stays in
/// `in_hand`, so that a write cut short (a kill) can still send it last.
fn write_batch<'a>(
    sink: &'a mut futures_util::stream::SplitSink<WebSocket, Message>,
    in_hand: &'a mut Option<Message>,
    outbox: &'a Outbox,
) -> impl std::future::Future<Output = Result<(), axum::Error>> + 'a {
    let next = in_hand;
    let mut written = 0;
    std::future::poll_fn(move |cx| {
        while let Some(message) = next.take() {
            if sink.poll_ready_unpin(cx)?.is_pending() {
                *next = Some(message);
                return Poll::Pending;
            }
            sink.start_send_unpin(message)?;
            written += 1;
            if written < WRITE_BATCH {
                *next = outbox.try_pop().map(Message::Text);
            }
        }
        sink.poll_flush_unpin(cx)
    })
}

/// Sends queued frames and pings until the socket is killed, then closes it
/// with the kill code. A blocked send is abandoned when the kill fires.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    kill: Arc<KillSwitch>,
    ping_every: Duration,
) {
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut in_hand: Option<Message> = None;
    loop {
        in_hand = Some(tokio::select! {
            biased;
            _ = kill.fired() => break,
            frame = outbox.pop() => Message::Text(frame),
            _ = ping.tick() => Message::Ping(Default::default()),
        });
        tokio::select! {
            sent = timeout(WRITE_TIMEOUT, write_batch(&mut sink, &mut in_hand, &outbox)) => match sent {
                Ok(Ok(())) => {}
                // The connection is broken: the reader stops too.
                Ok(Err(_)) => {
                    kill.fire(close::NORMAL);
                    break;
                }
                // The peer has not read for this long: too slow (4000).
                Err(_) => {
                    kill.fire(close::TOO_SLOW);
                    break;
                }
            },
            _ = kill.fired() => break,
        }
    }
    // Nothing more goes out but what is queued now: a session waiting for
    // room (a client that stopped reading) gives up at once.
    outbox.close();
    let code = kill.code().unwrap_or(close::NORMAL);
    // Frames already queued (an error that explains the close, for one) go
    // out first, within a short bound: a slow peer does not hold us up.
    if code != close::TOO_SLOW {
        let flush = async {
            if let Some(message) = in_hand.take()
                && sink.send(message).await.is_err()
            {
                return;
            }
            while let Some(frame) = outbox.try_pop() {
                if sink.send(Message::Text(frame)).await.is_err() {
                    break;
                }
            }
        };
        let _ = timeout(Duration::from_secs(1), flush).await;
    }
    let reason: &'static str = match code {
        close::GOING_AWAY => "server going away; reconnect and resume",
        close::POLICY => "policy violation",
        close::TOO_BIG => "frame too big",
        close::PROTOCOL_ERROR => "protocol error",
        close::INVALID_DATA => "a text frame must be UTF-8",
        close::TOO_SLOW => "too slow: reconnect and resume",
        close::SESSION_ENDED => "session ended; log in again",
        _ => "",
    };
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    // The peer may not be reading at all (that may be why it is closed):
    // a second for the sink to take the frame that says why, and one more to
    // flush it and close. If the sink cannot take it, the connection is just
    // dropped: closing the sink then would queue an empty close frame (no
    // code) for when the peer reads, which tells it less than a drop.
    if let Ok(Ok(())) = timeout(Duration::from_secs(1), sink.feed(close)).await {
        let _ = timeout(Duration::from_secs(1), sink.close()).await;
    }
}

/// The close code for a frame the WebSocket layer could not read (RFC 6455
/// §7.4.1), from its error: over-long frames (which tungstenite refuses to
/// read) 1009, text that is not UTF-8 1007, any other broken frame 1002. A
/// connection that simply went away is a normal end.
fn close_code_for(error: &str) -> u16 {
    let error = error.to_lowercase();
    if error.contains("message too long") || error.contains("space limit") {
        close::TOO_BIG
    } else if error.contains("utf-8") {
        close::INVALID_DATA
    } else if error.contains("protocol error") && !error.contains("reset without closing") {
        close::PROTOCOL_ERROR
    } else {
        close::NORMAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_frames_close_with_the_code_rfc_6455_gives_them() {
        for (error, code) in [
            (
                "Space limit exceeded: Message too long: 70000 > 65536",
                1009,
            ),
            ("UTF-8 encoding error: invalid utf-8 sequence", 1007),
            (
                "WebSocket protocol error: Encountered invalid opcode: 3",
                1002,
            ),
            (
                "WebSocket protocol error: Control frame too big (payload must be 125 bytes or less)",
                1002,
            ),
            ("WebSocket protocol error: Reserved bits are non-zero", 1002),
            (
                "WebSocket protocol error: Connection reset without closing handshake",
                1000,
            ),
            ("IO error: broken pipe", 1000),
        ] {
            assert_eq!(close_code_for(error), code, "{error}");
        }
    }
}
