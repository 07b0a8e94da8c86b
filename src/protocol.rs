//! The wire protocol (v1) between the server, the widget and the agent
//! console: JSON text frames, one object each, with a `type`. Documented in
//! `docs/protocol.md`; this module is its single source in code.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest frame the server reads (bigger: close 1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Ids travel as strings; clients may send numbers too.
fn de_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom("an id must be a number or a string of digits")),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| de::Error::custom("an id must be an integer")),
        _ => Err(de::Error::custom(
            "an id must be a number or a string of digits",
        )),
    }
}

/// A frame from a client.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Hello {
        #[serde(default)]
        visitor_token: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Start {
        #[serde(default)]
        client_msg_id: Option<String>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Send {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        client_msg_id: String,
        /// May be empty (or left out) when a file goes with the message.
        #[serde(default)]
        body: String,
        #[serde(default)]
        attachment_id: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Resume {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        after_seq: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Typing {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Read {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        seq: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Handoff {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Rate {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        score: i64,
        #[serde(default)]
        comment: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    /// The visitor leaves a name and email (pre-chat form, or when no agent is online).
    Contact {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Presence {
        status: String,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    WatchQueue {
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Claim {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Transfer {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        #[serde(deserialize_with = "de_id")]
        agent_id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Note {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        client_msg_id: String,
        #[serde(default)]
        body: String,
        #[serde(default)]
        attachment_id: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Resolve {
        #[serde(deserialize_with = "de_id")]
        conversation_id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
}

/// Every frame type a client may send, for telling "unknown" from "invalid".
pub const CLIENT_TYPES: &[&str] = &[
    "hello",
    "start",
    "send",
    "resume",
    "typing",
    "read",
    "handoff",
    "rate",
    "contact",
    "presence",
    "watch_queue",
    "claim",
    "transfer",
    "note",
    "resolve",
];

impl ClientFrame {
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Start { .. } => "start",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Resume { .. } => "resume",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Handoff { .. } => "handoff",
            ClientFrame::Rate { .. } => "rate",
            ClientFrame::Contact { .. } => "contact",
            ClientFrame::Presence { .. } => "presence",
            ClientFrame::WatchQueue { .. } => "watch_queue",
            ClientFrame::Claim { .. } => "claim",
            ClientFrame::Transfer { .. } => "transfer",
            ClientFrame::Note { .. } => "note",
            ClientFrame::Resolve { .. } => "resolve",
        }
    }
}

/// Why a text frame could not be understood, as the `error` frame says it.
#[derive(Debug, PartialEq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub reference: Option<Value>,
}

/// Parses a text frame. The `ref` of a frame that is at least an object is
/// kept, so that even an error can be matched to its request.
pub fn parse_client_frame(text: &str) -> Result<(ClientFrame, Option<Value>), FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
        code: "bad_frame",
        message: format!("not JSON: {e}"),
        reference: None,
    })?;
    let Value::Object(object) = &value else {
        return Err(FrameError {
            code: "bad_frame",
            message: "a frame must be a JSON object".into(),
            reference: None,
        });
    };
    let reference = object.get("ref").cloned();
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(FrameError {
                code: "bad_frame",
                message: "a frame needs a string `type`".into(),
                reference,
            });
        }
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(FrameError {
            code: "unknown_type",
            message: format!("unknown frame type `{kind}`"),
            reference,
        });
    }
    let frame = ClientFrame::deserialize(value).map_err(|e| FrameError {
        code: "invalid",
        message: format!("{kind}: {e}"),
        reference: reference.clone(),
    })?;
    Ok((frame, reference))
}

/// `sender` of a message frame.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sender {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageFrame {
    pub conversation_id: String,
    pub seq: i64,
    pub id: String,
    pub sender: Sender,
    pub body: String,
    pub private: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    pub client_msg_id: String,
    pub at: String,
}

/// A file sent with a message. Its bytes are at `url` (relative to
/// Careline's address), for whoever may read the message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentInfo {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    /// A raster image that may be shown inline (as a thumbnail).
    pub image: bool,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assignee {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationFrame {
    pub id: String,
    /// `bot`, `waiting`, `live`, `resolved` or `closed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignee>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_number: Option<i64>,
    pub last_seq: i64,
    /// Staff only: who the customer is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Staff only: messages the agent has not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
    /// Staff only: the site the conversation came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteRef>,
}

/// A site, as staff see which one a conversation came from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SiteRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    /// Their contact's id: `/console/contacts/{id}`, `/api/v1/contacts/{id}`.
    pub contact_id: String,
    pub name: String,
    pub email: String,
    /// Whether the email is proven (a verified account's, or vouched for
    /// by the host site); agents see a typed one marked unverified.
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub conversation_id: String,
    pub site: SiteRef,
    pub ticket_number: Option<i64>,
    pub customer: String,
    pub waiting_since: String,
    pub preview: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRef {
    pub id: String,
    pub name: String,
}

/// A frame from the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        role: &'static str,
        user: UserRef,
        conversations: Vec<ConversationFrame>,
    },
    Ack {
        client_msg_id: String,
        conversation_id: String,
        seq: i64,
        id: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
    },
    Message(MessageFrame),
    Resumed {
        conversation_id: String,
        last_seq: i64,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
    },
    Conversation(ConversationFrame),
    Typing {
        conversation_id: String,
        sender: Sender,
    },
    Read {
        conversation_id: String,
        seq: i64,
        sender: Sender,
    },
    Queue {
        waiting: Vec<QueueItem>,
    },
    ResumeRequired {
        conversation_id: String,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
    },
}

impl ServerFrame {
    /// Serialized once; shared by every socket it goes to.
    pub fn to_text(&self) -> std::sync::Arc<str> {
        serde_json::to_string(self)
            .expect("server frames always serialize")
            .into()
    }
}

/// RFC 3339 UTC time from unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_string_or_number_ids_and_keep_ref() {
        let (frame, reference) = parse_client_frame(
            r#"{"type":"send","conversation_id":"12","client_msg_id":"c1","body":"hi","ref":7}"#,
        )
        .unwrap();
        assert_eq!(reference, Some(Value::from(7)));
        assert!(matches!(
            frame,
            ClientFrame::Send {
                conversation_id: 12,
                ..
            }
        ));
        let (frame, _) =
            parse_client_frame(r#"{"type":"resume","conversation_id":12,"after_seq":3}"#).unwrap();
        assert!(matches!(
            frame,
            ClientFrame::Resume {
                conversation_id: 12,
                after_seq: 3,
                ..
            }
        ));
    }

    #[test]
    fn bad_frames_get_the_documented_codes() {
        let code = |text: &str| parse_client_frame(text).unwrap_err().code;
        assert_eq!(code("not json"), "bad_frame");
        assert_eq!(code("[1,2]"), "bad_frame");
        assert_eq!(code(r#"{"no":"type"}"#), "bad_frame");
        assert_eq!(code(r#"{"type":"explode"}"#), "unknown_type");
        assert_eq!(
            code(r#"{"type":"send","conversation_id":"x","client_msg_id":"c","body":"b"}"#),
            "invalid"
        );
        let missing =
            parse_client_frame(r#"{"type":"send","conversation_id":1,"body":"b","ref":"r"}"#)
                .unwrap_err();
        assert_eq!(missing.code, "invalid");
        assert!(
            missing.message.contains("client_msg_id"),
            "{}",
            missing.message
        );
        assert_eq!(missing.reference, Some(Value::from("r")));
    }

    proptest::proptest! {
        /// Whatever arrives, the parser answers (a frame or an error with a
        /// documented code) and never panics.
        #[test]
        fn any_text_gets_a_frame_or_a_documented_error(text in ".{0,300}") {
            check(&text);
        }

        #[test]
        fn json_shaped_text_too(kind in "(send|resume|hello|start|typing|read|claim|note|x|)", id in "[0-9a-z\"{}\\[\\]:,-]{0,12}", body in ".{0,40}") {
            check(&format!(r#"{{"type":"{kind}","conversation_id":{id},"client_msg_id":"{body}","body":"{body}","after_seq":{id}}}"#));
        }
    }

    fn check(text: &str) {
        match parse_client_frame(text) {
            Ok(_) => {}
            Err(e) => assert!(
                ["bad_frame", "unknown_type", "invalid"].contains(&e.code),
                "{}",
                e.code
            ),
        }
    }

    #[test]
    fn server_frames_have_their_type() {
        let text = ServerFrame::ResumeRequired {
            conversation_id: "4".into(),
        }
        .to_text();
        assert_eq!(
            &*text,
            r#"{"type":"resume_required","conversation_id":"4"}"#
        );
    }
}
