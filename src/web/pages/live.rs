//! The live console: presence, the queue, my conversations and the chat
//! pane, narrowed to one site if the agent chooses. The page is the frame;
//! `assets/console.js` fills it over the socket.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::console::site_choices;
use super::layout::page;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::error::PageError;
use crate::web::session::Staff;

#[derive(Deserialize, Default)]
pub struct LiveQuery {
    /// A site's id: only its conversations are listed.
    #[serde(default)]
    site: String,
}

pub async fn console(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Query(query): Query<LiveQuery>,
) -> Result<Response, PageError> {
    let user = &current.user;
    let staff = state.store().staff().await?;
    let sites = site_choices(&state.store().sites().await?);
    let canned = state.store().canned_replies().await?;
    Ok(page(
        "Live chat",
        Some(user),
        &csrf.0,
        html! {
            div #console.console data-me=(user.id) data-name=(user.name) data-csrf=(csrf.0) {
                div.console-head {
                    h1 { "Live chat" }
                    div.presence {
                        label for="presence" { "Status" }
                        select #presence {
                            option value="away" { "Away" }
                            option value="online" { "Online" }
                        }
                        span #connection.connection role="status" { "Connecting…" }
                    }
                    div.site-filter {
                        label for="site-filter" { "Site" }
                        select #site-filter {
                            @for (value, name) in &sites {
                                option value=(value) selected[*value == query.site] { (name) }
                            }
                        }
                    }
                }
                div.console-body {
                    aside.console-lists {
                        section aria-labelledby="queue-title" {
                            h2 #queue-title { "Waiting " span #queue-count.count { "0" } }
                            ul #queue.conv-list aria-live="polite" {}
                            p #queue-empty.hint { "Nobody is waiting." }
                            p #queue-others.hint hidden {}
                        }
                        section aria-labelledby="mine-title" {
                            h2 #mine-title { "My conversations" }
                            ul #mine.conv-list {}
                            p #mine-empty.hint { "None yet: claim one from the queue." }
                            p #mine-others.hint hidden {}
                        }
                    }
                    section #pane.chat-pane aria-label="Conversation" hidden {
                        header.pane-head {
                            div {
                                h2 #pane-title { "Conversation" }
                                p #pane-customer.hint {}
                            }
                            div.pane-actions {
                                button #claim type="button" { "Claim" }
                                label for="transfer-to" .visually-hidden { "Transfer to" }
                                select #transfer-to {
                                    option value="" { "Transfer to…" }
                                    @for person in &staff {
                                        @if person.id != user.id {
                                            option value=(person.id) { (person.name) }
                                        }
                                    }
                                }
                                button #resolve.secondary type="button" { "Resolve" }
                            }
                        }
                        ol #transcript.thread role="log" aria-live="polite" aria-label="Messages" {}
                        p #typing.hint aria-live="polite" {}
                        form #composer.composer {
                            div.composer-mode role="radiogroup" aria-label="Send as" {
                                label { input type="radio" name="mode" value="reply" checked; " Reply" }
                                label { input type="radio" name="mode" value="note"; " Private note" }
                            }
                            label for="canned" .visually-hidden { "Canned reply" }
                            select #canned {
                                option value="" { "Canned replies…" }
                                @for reply in &canned {
                                    option value=(reply.body) { (reply.title) }
                                }
                            }
                            label for="message" .visually-hidden { "Message" }
                            textarea #message rows="3" maxlength="8000" placeholder="Write a reply… (Enter sends, Shift+Enter for a new line; drop a file to attach it)" {}
                            label for="file" .visually-hidden { "Attach a file" }
                            input #file type="file" hidden;
                            button #attach.secondary type="button" { "Attach file" }
                            span #upload-status.upload-status role="status" {}
                            button type="submit" { "Send" }
                        }
                    }
                }
            }
            script src="/assets/console.js" defer {}
        },
    )
    .into_response())
}
