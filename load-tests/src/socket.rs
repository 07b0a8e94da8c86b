//! One WebSocket to Careline, as a widget or the agent console opens it;
//! or to the Socket.IO peer (`load-tests/peer/`), speaking Engine.IO v4 by
//! hand over the same WebSocket, so that the scenarios drive both with the
//! same frames (see [`crate::sio`]).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub struct Socket {
    stream: WebSocketStream<TcpStream>,
    pace: Pace,
    /// Set for a Socket.IO socket: its acks in flight and frames to hand out.
    sio: Option<crate::sio::State>,
    /// Why the socket ended without a close frame, if it did.
    ended: Option<&'static str>,
}

/// Keeps a client under the server's per-socket frame limit with a margin,
/// as a well-behaved client would: bursts such as a reconnect's resumes and
/// resends are spread out, not refused. A widget may send 10 frames per
/// second (burst 30), an agent's console three times that.
struct Pace {
    tokens: f64,
    last: tokio::time::Instant,
    per_second: f64,
    burst: f64,
}

impl Pace {
    fn new() -> Pace {
        Pace::at(8.0, 20.0)
    }

    fn at(per_second: f64, burst: f64) -> Pace {
        Pace {
            tokens: burst,
            last: tokio::time::Instant::now(),
            per_second,
            burst,
        }
    }

    async fn take(&mut self) {
        let now = tokio::time::Instant::now();
        self.tokens =
            (self.tokens + (now - self.last).as_secs_f64() * self.per_second).min(self.burst);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / self.per_second;
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
            self.tokens = 1.0;
            self.last = tokio::time::Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// What came in: a frame, or the end of the socket with its close code.
pub enum Incoming {
    Frame(Value),
    Closed(Option<u16>),
}

impl Socket {
    /// Opens `ws://addr{path}` from `local` (any port), with `Origin` and an
    /// optional `Cookie`, using small buffers like a real client would.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        origin: &str,
        cookie: Option<&str>,
        local: Option<IpAddr>,
    ) -> anyhow::Result<Socket> {
        let stream = connect(addr, path, origin, cookie, local).await?;
        Ok(Socket {
            stream,
            pace: Pace::new(),
            sio: None,
            ended: None,
        })
    }

    /// Opens a Socket.IO v4 socket (WebSocket transport only) and connects
    /// to the default namespace with `auth` (`40{auth}`), as the
    /// `socket.io-client` does with `transports: ["websocket"]`.
    pub async fn open_sio(
        addr: SocketAddr,
        origin: &str,
        auth: &Value,
        local: Option<IpAddr>,
    ) -> anyhow::Result<Socket> {
        let stream = connect(
            addr,
            "/socket.io/?EIO=4&transport=websocket",
            origin,
            None,
            local,
        )
        .await?;
        let mut socket = Socket {
            stream,
            pace: Pace::new(),
            sio: None,
            ended: None,
        };
        // Engine.IO open (`0{sid, pingInterval, …}`), then the namespace connect.
        match socket.raw().await {
            Some(text) if text.starts_with('0') => {}
            other => bail!("no Engine.IO open packet: {other:?}"),
        }
        socket.raw_send(format!("40{auth}")).await?;
        loop {
            match socket.raw().await {
                Some(text) if text.starts_with("40") => break,
                Some(text) if text == "2" => socket.raw_send("3".into()).await?,
                Some(text) if text.starts_with("44") => bail!("Socket.IO refused: {text}"),
                other => bail!("no Socket.IO connect: {other:?}"),
            }
        }
        socket.sio = Some(crate::sio::State::default());
        Ok(socket)
    }

    /// The next text frame, raw (None: closed or broken).
    async fn raw(&mut self) -> Option<String> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn raw_send(&mut self, text: String) -> anyhow::Result<()> {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .context("send frame")
    }
}

async fn connect(
    addr: SocketAddr,
    path: &str,
    origin: &str,
    cookie: Option<&str>,
    local: Option<IpAddr>,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let tcp = match (addr, local) {
        (SocketAddr::V4(_), Some(ip)) => {
            let socket = TcpSocket::new_v4()?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("bind {ip}"))?;
            socket.connect(addr).await
        }
        _ => TcpStream::connect(addr).await,
    }
    .with_context(|| format!("connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin)?);
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("Cookie", HeaderValue::from_str(cookie)?);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024);
    match tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await {
        Ok((stream, _)) => Ok(stream),
        Err(WsError::Http(response)) => bail!("upgrade refused with {}", response.status()),
        Err(e) => Err(e).context("websocket handshake"),
    }
}

impl Socket {
    /// Sends a Careline frame; on a Socket.IO socket, as the event named by
    /// its `type`, with an ack whose answer comes back as frames.
    /// Paces this socket as an agent's console (24 frames per second,
    /// burst 60: under the console's limit of 30 and 90).
    pub fn pace_as_console(&mut self) {
        self.pace = Pace::at(24.0, 60.0);
    }

    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.pace.take().await;
        let text = match &mut self.sio {
            Some(sio) => sio.emit(frame)?,
            None => frame.to_string(),
        };
        self.raw_send(text).await
    }

    /// The next JSON frame; pings are answered on the way (by tungstenite,
    /// or with an Engine.IO pong).
    pub async fn recv(&mut self) -> Incoming {
        if self.sio.is_some() {
            return self.recv_sio().await;
        }
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                    Ok(value) => return Incoming::Frame(value),
                    Err(_) => {
                        self.ended = Some("not json");
                        return Incoming::Closed(None);
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Err(e)) => {
                    self.ended = Some(ended(&e));
                    return Incoming::Closed(None);
                }
                None => {
                    self.ended = Some("eof");
                    return Incoming::Closed(None);
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads until a frame of `kind` (an `error` on the way is a failure).
    pub async fn expect(&mut self, kind: &str) -> anyhow::Result<Value> {
        loop {
            match self.recv().await {
                Incoming::Frame(f) if f["type"] == kind => return Ok(f),
                Incoming::Frame(f) if f["type"] == "error" => {
                    bail!("waiting for {kind}: error {}", f)
                }
                Incoming::Frame(_) => continue,
                Incoming::Closed(code) => {
                    bail!("socket closed ({code:?}) while waiting for {kind}")
                }
            }
        }
    }

    async fn recv_sio(&mut self) -> Incoming {
        loop {
            let sio = self.sio.as_mut().expect("a Socket.IO socket");
            if let Some(frame) = sio.queue.pop_front() {
                return Incoming::Frame(frame);
            }
            let text = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Err(e)) => {
                    self.ended = Some(ended(&e));
                    return Incoming::Closed(None);
                }
                None => {
                    self.ended = Some("eof");
                    return Incoming::Closed(None);
                }
                Some(Ok(_)) => continue,
            };
            let sio = self.sio.as_mut().expect("a Socket.IO socket");
            match sio.receive(&text) {
                crate::sio::Received::Frames => {}
                crate::sio::Received::Ping => {
                    if self.raw_send("3".into()).await.is_err() {
                        return Incoming::Closed(None);
                    }
                }
                crate::sio::Received::Closed => return Incoming::Closed(None),
            }
        }
    }

    /// Why the socket ended without a close frame (`eof`, `reset`, …).
    pub fn ended(&self) -> Option<&'static str> {
        self.ended
    }

    pub async fn close(mut self) {
        if self.sio.is_some() {
            // Socket.IO disconnect, then Engine.IO close.
            let _ = self.raw_send("41".into()).await;
            let _ = self.raw_send("1".into()).await;
        }
        let _ = self.stream.close(None).await;
    }
}

/// A short name for what broke a socket.
fn ended(error: &WsError) -> &'static str {
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed",
        WsError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset",
        WsError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => "eof",
        WsError::Io(_) => "io",
        WsError::Protocol(_) => "protocol",
        WsError::Capacity(_) => "too large",
        _ => "error",
    }
}
