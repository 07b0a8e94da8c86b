//! Pieces of a ticket page shared by the customer portal and the console:
//! the thread, the timeline, status and priority badges.

use maud::{Markup, html};

use super::layout::{badge, time};
use crate::domain::attachments::human_size;
use crate::model::AttachmentRef;
use crate::model::SenderKind;
use crate::model::{ConversationId, Label, Message, Ticket, TicketEvent};

/// A label as a chip in its colour (staff pages only).
pub fn label_chip(label: &Label) -> Markup {
    html! { span class={ "label label-" (label.colour.as_str()) } { (label.name) } }
}

pub fn status_badge(ticket: &Ticket) -> Markup {
    badge(ticket.status.as_str(), ticket.status.as_str())
}

pub fn priority_badge(ticket: &Ticket) -> Markup {
    badge(
        &format!("priority-{}", ticket.priority),
        ticket.priority.as_str(),
    )
}

/// The conversation, oldest first. Private notes are marked as such (only
/// staff views are ever given them). A message that came by email links to
/// its original (`emailed`: staff `seq` → the original's id, in `seq`
/// order), which its page checks the reader may see.
pub fn thread(messages: &[Message], emailed: &[(i64, i64)]) -> Markup {
    let original_of = |seq: i64| {
        emailed
            .binary_search_by_key(&seq, |(s, _)| *s)
            .ok()
            .map(|at| emailed[at].1)
    };
    html! {
        ol.thread aria-label="Conversation" {
            @for message in messages {
                li class={
                    "message "
                    @if message.private { "message-note" }
                    @else if message.sender_kind == SenderKind::Customer { "message-customer" }
                    @else { "message-staff" }
                } {
                    p.meta {
                        strong { (message.sender_name) }
                        @if message.private { " " (badge("note", "private note")) }
                        " · " (time(message.created_at))
                    }
                    @if !message.body.is_empty() {
                        div.body { (message.body) }
                    }
                    @if let Some(file) = &message.attachment {
                        (attachment(file))
                    }
                    // What the bot offered, as text: on a ticket the
                    // question is history, not something to answer.
                    @if !message.options.is_empty() {
                        p.offered { "Offered: " (message.options.join(" · ")) }
                    }
                    @if let Some(id) = original_of(message.seq) {
                        p.original { a href={ "/emails/" (id) } { "View original email" } }
                    }
                }
            }
        }
    }
}

/// A message's file: a thumbnail for images, a download link otherwise. The
/// same-origin door (`/attachments/…`) checks the session on every read.
pub fn attachment(file: &AttachmentRef) -> Markup {
    let url = format!("/attachments/{}", file.id);
    html! {
        div.attachment {
            @if file.is_image() {
                a href=(url) target="_blank" rel="noopener" {
                    img.thumb src=(url) alt=(file.name) loading="lazy";
                }
            }
            a.file href=(url) download=(file.name) {
                span.name { (file.name) }
                " " span.size { "(" (human_size(file.size)) ")" }
            }
        }
    }
}

/// A file picker for a reply or note form, shown by `ticket.js` (without
/// JavaScript the form stays text only). The upload happens first; the form
/// then carries the file's id in `attachment_id`.
pub fn attach_field(conversation_id: ConversationId, id: &str) -> Markup {
    html! {
        div.attach-field data-upload={ "/api/v1/conversations/" (conversation_id) "/attachments" } hidden {
            label for=(id) { "Attach a file (optional)" }
            input id=(id) type="file";
            input type="hidden" name="attachment_id" value="";
            span.upload-status role="status" {}
        }
    }
}

pub fn timeline(events: &[TicketEvent]) -> Markup {
    html! {
        section.timeline aria-labelledby="timeline-title" {
            h2 #timeline-title { "Progress" }
            ol {
                @for event in events {
                    li class={ "event event-" (event.kind.as_str()) } {
                        span.what { (event.describe()) }
                        span.who { " by " (event.actor) }
                        span.when { " · " (time(event.at)) }
                    }
                }
            }
        }
    }
}

pub fn summary(ticket: &Ticket) -> Markup {
    html! {
        dl.summary {
            dt { "Status" } dd { (status_badge(ticket)) }
            dt { "Priority" } dd { (priority_badge(ticket)) }
            dt { "Assigned to" }
            dd { @match &ticket.assignee { Some(a) => (a.name), None => "Nobody yet" } }
            dt { "Opened" } dd { (time(ticket.created_at)) }
            dt { "Last update" } dd { (time(ticket.updated_at)) }
        }
    }
}

/// A reply on a ticket page, the customer's (portal) or staff's (console).
#[derive(serde::Deserialize)]
pub struct ReplyForm {
    pub(super) body: String,
    /// A file uploaded first by `ticket.js` (empty: none).
    #[serde(default)]
    pub(super) attachment_id: String,
}
