//! Turning rows into domain values. Columns are read by name; a value the
//! schema's CHECK constraints should have prevented becomes a decode error.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::AttachmentRef;
use crate::model::Message;
use crate::model::{Role, SenderKind, User, UserId};

pub(super) fn decode_err(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("unexpected value `{value}`").into(),
    }
}

/// Reads a text column and parses it with `parse` (one of the text enums).
pub(super) fn text_enum<T>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| decode_err(column, &text))
}

pub(super) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

pub(super) const USER_COLUMNS: &str = "id, email, name, role, verified, created_at";

pub(super) fn user(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: UserId(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: text_enum(row, "role", Role::parse)?,
        verified: flag(row, "verified")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, public_seq, sender_kind, sender_user_id, sender_name, body, private, client_msg_id, created_at, attachment, options";

pub(super) fn message(row: &AnyRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        seq: row.try_get("seq")?,
        public_seq: row.try_get("public_seq")?,
        sender_kind: text_enum(row, "sender_kind", SenderKind::parse)?,
        sender_user_id: row.try_get("sender_user_id")?,
        sender_name: row.try_get("sender_name")?,
        body: row.try_get("body")?,
        private: flag(row, "private")?,
        client_msg_id: row.try_get("client_msg_id")?,
        created_at: row.try_get("created_at")?,
        attachment: attachment_snapshot(row)?,
        options: options(row)?,
    })
}

/// A bot message's buttons as stored: a JSON array of strings, NULL when
/// there are none (so an ordinary message stores and reads nothing more).
pub(super) fn options_json(options: &[String]) -> Option<String> {
    (!options.is_empty())
        .then(|| serde_json::to_string(options).expect("a list of strings serializes"))
}

fn options(row: &AnyRow) -> Result<Vec<String>, sqlx::Error> {
    let json: Option<String> = row.try_get("options")?;
    match json {
        None => Ok(Vec::new()),
        Some(json) => serde_json::from_str(&json).map_err(|e| sqlx::Error::ColumnDecode {
            index: "options".into(),
            source: Box::new(e),
        }),
    }
}

/// The attachment stored with a message (JSON, written once with it).
fn attachment_snapshot(row: &AnyRow) -> Result<Option<AttachmentRef>, sqlx::Error> {
    let json: Option<String> = row.try_get("attachment")?;
    json.map(|json| {
        serde_json::from_str(&json).map_err(|e| sqlx::Error::ColumnDecode {
            index: "attachment".into(),
            source: Box::new(e),
        })
    })
    .transpose()
}
