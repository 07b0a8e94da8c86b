//! Socket.IO v4 over Engine.IO v4, WebSocket transport only, by hand: just
//! what the load scenarios need to drive the Socket.IO peer
//! (`load-tests/peer/`) with Careline's frames.
//!
//! Packets are text frames: `0{…}` Engine.IO open, `2` ping from the
//! server (answered `3`), `1` close; then Socket.IO inside Engine.IO
//! messages (`4`): `40{auth}` connect, `41` disconnect, `42["event",arg]`
//! an event, `42<id>["event",arg]` an event that wants an ack,
//! `43<id>[arg]` the ack.
//!
//! Mapping: a Careline frame `{"type": "send", …}` is emitted as the event
//! `send` with the rest of the frame as its argument and an ack id; the
//! peer answers every event through the ack with a Careline frame (or an
//! array of them, e.g. `resume` → `message`… `resumed`), and pushes
//! `message` and `conversation` events whose argument is the frame. So the
//! scenarios read the same frames from both servers.

use std::collections::{HashMap, VecDeque};

use anyhow::Context;
use serde_json::Value;

/// One Socket.IO socket's state: acks in flight, frames to hand out.
#[derive(Debug, Default)]
pub struct State {
    next_id: u64,
    /// Ack id → the event it answers (names a reply without a `type`).
    pending: HashMap<u64, String>,
    pub(crate) queue: VecDeque<Value>,
}

/// What a received packet was.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Zero or more frames were queued.
    Frames,
    /// The server pinged: answer `3`.
    Ping,
    /// The server disconnected or closed.
    Closed,
}

impl State {
    /// The text of an event carrying `frame` (its `type` names the event),
    /// asking for an ack.
    pub fn emit(&mut self, frame: &Value) -> anyhow::Result<String> {
        let mut arg = frame
            .as_object()
            .context("a frame is a JSON object")?
            .clone();
        let event = match arg.remove("type") {
            Some(Value::String(t)) => t,
            _ => anyhow::bail!("a frame without a type: {frame}"),
        };
        self.next_id += 1;
        let id = self.next_id;
        let text = format!(
            "42{id}{}",
            Value::from(vec![Value::from(event.clone()), arg.into()])
        );
        self.pending.insert(id, event);
        Ok(text)
    }

    /// Takes in one text packet from the server.
    pub fn receive(&mut self, text: &str) -> Received {
        let kind = text.get(..2).unwrap_or(text);
        let rest = text.get(2..).unwrap_or_default();
        match kind {
            "2" => Received::Ping,
            "1" | "41" => Received::Closed,
            "42" => {
                // An event (a server-side ack id, if any, is not used here).
                let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                if let Ok(Value::Array(mut parts)) = serde_json::from_str(json)
                    && parts.len() >= 2
                {
                    let name = parts[0].as_str().unwrap_or_default().to_string();
                    self.push(parts.swap_remove(1), &name);
                }
                Received::Frames
            }
            "43" => {
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let event = rest[..digits]
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.pending.remove(&id))
                    .unwrap_or_default();
                if let Ok(Value::Array(mut args)) = serde_json::from_str(&rest[digits..])
                    && !args.is_empty()
                {
                    match args.swap_remove(0) {
                        Value::Array(frames) => {
                            for frame in frames {
                                self.push(frame, &event);
                            }
                        }
                        frame => self.push(frame, &event),
                    }
                }
                Received::Frames
            }
            _ => Received::Frames,
        }
    }

    fn push(&mut self, frame: Value, event: &str) {
        let Value::Object(mut frame) = frame else {
            return;
        };
        frame
            .entry("type")
            .or_insert_with(|| Value::from(event.to_string()));
        self.queue.push_back(frame.into());
    }

    /// Acks still awaited.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emits_a_frame_as_an_event_with_an_ack_id() {
        let mut state = State::default();
        let text = state
            .emit(&json!({"type": "send", "conversation_id": "7", "body": "hi"}))
            .unwrap();
        assert_eq!(text, r#"421["send",{"body":"hi","conversation_id":"7"}]"#);
        let text = state.emit(&json!({"type": "start"})).unwrap();
        assert!(text.starts_with("422[\"start\""), "{text}");
        assert_eq!(state.in_flight(), 2);
        assert!(state.emit(&json!({"no": "type"})).is_err());
    }

    #[test]
    fn acks_and_events_become_frames() {
        let mut state = State::default();
        state.emit(&json!({"type": "send"})).unwrap();
        state.emit(&json!({"type": "resume"})).unwrap();
        assert_eq!(
            state.receive(r#"431[{"type":"ack","seq":3}]"#),
            Received::Frames
        );
        // An array answers with several frames; a frame without a type
        // is named after the event it answers.
        state.receive(r#"432[[{"type":"message","seq":1},{"last_seq":1}]]"#);
        state.receive(r#"42["message",{"seq":4,"body":"x"}]"#);
        let frames: Vec<Value> = state.queue.drain(..).collect();
        assert_eq!(frames[0], json!({"type": "ack", "seq": 3}));
        assert_eq!(frames[1], json!({"type": "message", "seq": 1}));
        assert_eq!(frames[2], json!({"type": "resume", "last_seq": 1}));
        assert_eq!(frames[3], json!({"type": "message", "seq": 4, "body": "x"}));
        assert_eq!(state.in_flight(), 0);
        assert_eq!(state.receive("2"), Received::Ping);
        assert_eq!(state.receive("41"), Received::Closed);
        assert_eq!(state.receive("1"), Received::Closed);
        assert_eq!(state.receive("6"), Received::Frames);
    }
}
