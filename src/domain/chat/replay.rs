//! Resume: everything after a client's last `seq`, from the database, in
//! pages, in the audience's own numbering (protocol §6).

use super::Chat;
use super::frames::Audience;
use crate::domain::DomainResult;
use crate::model::{Conversation, ConversationId};
use crate::protocol::ServerFrame;

/// How far a resume has got: the staff seq read up to, and the last seq
/// sent in the audience's numbering.
#[derive(Debug, Clone, Copy)]
pub struct ReplayCursor {
    pub staff_seq: i64,
    pub last: i64,
}

/// How many messages a resume sends per database read.
pub(super) const REPLAY_PAGE: i64 = 200;

impl Chat {
    /// Where a resume starts: after `after_seq` in the audience's numbering,
    /// brought back to what exists when a client claims more (stale storage).
    pub async fn replay_start(
        &self,
        c: &Conversation,
        audience: Audience,
        after_seq: i64,
    ) -> DomainResult<ReplayCursor> {
        let staff = audience == Audience::Staff;
        let newest = if staff { c.last_seq } else { c.last_public_seq };
        let after_seq = after_seq.clamp(0, newest);
        let staff_seq = if staff {
            after_seq
        } else {
            self.staff_seq_of_public(c.id, after_seq).await?
        };
        Ok(ReplayCursor {
            staff_seq,
            last: after_seq,
        })
    }

    /// One page of a resume: the frames, where the next page starts, and
    /// whether there may be more.
    pub async fn replay_page(
        &self,
        c: &Conversation,
        audience: Audience,
        mut cursor: ReplayCursor,
    ) -> DomainResult<(Vec<ServerFrame>, ReplayCursor, bool)> {
        let staff = audience == Audience::Staff;
        let page = self
            .store
            .messages_after(c.id, cursor.staff_seq, staff, REPLAY_PAGE)
            .await?;
        let more = page.len() as i64 == REPLAY_PAGE;
        let mut frames = Vec::with_capacity(page.len());
        for message in &page {
            cursor.staff_seq = message.seq;
            if let Some(frame) = self.message_frame(message, audience) {
                cursor.last = if staff {
                    message.seq
                } else {
                    message.public_seq.unwrap_or(cursor.last)
                };
                frames.push(frame);
            }
        }
        Ok((frames, cursor, more))
    }

    pub(super) async fn staff_seq_of_public(
        &self,
        conversation_id: ConversationId,
        public_seq: i64,
    ) -> DomainResult<i64> {
        if public_seq <= 0 {
            return Ok(0);
        }
        Ok(self
            .store
            .staff_seq_for_public(conversation_id, public_seq)
            .await?)
    }
}
