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
}

/// What came in: a frame, or the end of the socket.
pub enum Incoming {
    Frame(Value),
    Closed,
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
            Ok((stream, _)) => Ok(Socket { stream }),
            Err(WsError::Http(response)) => bail!("upgrade refused with {}", response.status()),
            Err(e) => Err(e).context("websocket handshake"),
        }
    }

    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
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
                    Err(_) => return Incoming::Closed,
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Incoming::Closed,
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
                Incoming::Closed => bail!("socket closed while waiting for {kind}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
