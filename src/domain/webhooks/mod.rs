//! Signed webhooks: admins register endpoints for events; each event is a
//! journal row written with the change itself (store), fanned out here into
//! one delivery per subscribed endpoint with its body built once, and
//! delivered at least once, in order per conversation, signed, through the
//! egress policy, retried with backoff until the endpoint is turned off.
//! docs/protocol.md ("Webhooks") is what receivers read.

mod endpoints;
mod fan_out;
mod signing;
mod worker;

pub use endpoints::{Registered, Settings, create, delete, enable, send_test, update};
pub use signing::{SIGNATURE_HEADER, sign, signature_header};
pub use worker::{WorkerConfig, backoff, spawn};

/// Every event type an endpoint may subscribe to, with what it means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "conversation.started",
        "a conversation started (widget or portal)",
    ),
    (
        "conversation.handed_off",
        "a conversation went from the bot to the queue, for a person",
    ),
    (
        "conversation.assigned",
        "an agent took or was given a conversation",
    ),
    ("conversation.resolved", "a conversation was resolved"),
    (
        "message.created",
        "a message was written (private notes only where the endpoint takes them)",
    ),
    ("ticket.created", "a ticket was opened"),
    ("ticket.status_changed", "a ticket's status changed"),
    ("rating.received", "a customer rated a conversation"),
    (
        "contact.created",
        "a new contact (widget visitor or portal customer)",
    ),
];

/// The event a "Send test event" button sends, to that endpoint only.
pub const PING: &str = "ping";
