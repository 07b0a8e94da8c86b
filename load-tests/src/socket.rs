//! One WebSocket to Careline, as a widget or the agent console opens it.

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
}

/// Keeps a client under the server's per-socket frame limit (10 per second,
/// burst 30) with a margin, as a well-behaved client would: bursts such as
/// a reconnect's resumes and resends are spread out, not refused.
struct Pace {
    tokens: f64,
    last: tokio::time::Instant,
}

impl Pace {
    const PER_SECOND: f64 = 8.0;
    const BURST: f64 = 20.0;

    fn new() -> Pace {
        Pace {
            tokens: Self::BURST,
            last: tokio::time::Instant::now(),
        }
    }

    async fn take(&mut self) {
        let now = tokio::time::Instant::now();
        self.tokens =
            (self.tokens + (now - self.last).as_secs_f64() * Self::PER_SECOND).min(Self::BURST);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / Self::PER_SECOND;
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
            Ok((stream, _)) => Ok(Socket {
                stream,
                pace: Pace::new(),
            }),
            Err(WsError::Http(response)) => bail!("upgrade refused with {}", response.status()),
            Err(e) => Err(e).context("websocket handshake"),
        }
    }

    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.pace.take().await;
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .context("send frame")
    }

    /// The next JSON frame; pings are answered by tungstenite on the way.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                    Ok(value) => return Incoming::Frame(value),
                    Err(_) => return Incoming::Closed(None),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Err(_)) | None => return Incoming::Closed(None),
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

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
