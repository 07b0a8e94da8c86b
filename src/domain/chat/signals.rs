//! Ephemeral signals: typing, and read markers (stored, and told to each
//! audience in its own numbering).

use super::frames::Audience;
use super::{Chat, Participant};
use crate::bus::Topic;
use crate::domain::DomainResult;
use crate::model::ConversationId;
use crate::protocol::{Sender, ServerFrame};

impl Chat {
    pub(super) fn sender_of(who: &Participant, audience: Audience) -> Sender {
        match who {
            Participant::Visitor(v) => Sender {
                kind: "customer",
                id: None,
                name: v.display_name(),
            },
            Participant::Agent(a) => Sender {
                kind: "agent",
                id: (audience == Audience::Staff).then(|| a.id.to_string()),
                name: a.name.clone(),
            },
        }
    }

    pub async fn typing(
        &self,
        who: &Participant,
        conversation_id: ConversationId,
    ) -> DomainResult<()> {
        let c = self.conversation_for(who, conversation_id).await?;
        for (audience, topic) in [
            (Audience::Staff, Topic::Staff(c.id)),
            (Audience::Visitor, Topic::Public(c.id)),
        ] {
            let frame = ServerFrame::Typing {
                conversation_id: c.id.to_string(),
                sender: Self::sender_of(who, audience),
            };
            self.publish(topic, &frame).await;
        }
        Ok(())
    }

    /// A read marker, in the reader's own numbering; each audience is told
    /// in its own.
    pub async fn read(
        &self,
        who: &Participant,
        conversation_id: ConversationId,
        seq: i64,
    ) -> DomainResult<()> {
        let c = self.conversation_for(who, conversation_id).await?;
        let (staff_seq, public_seq) = match who {
            Participant::Agent(_) => {
                let seq = seq.clamp(0, c.last_seq);
                (seq, self.store.public_seq_at(c.id, seq).await?)
            }
            Participant::Visitor(_) => {
                let seq = seq.clamp(0, c.last_public_seq);
                (self.staff_seq_of_public(c.id, seq).await?, seq)
            }
        };
        self.store
            .mark_read(
                c.id,
                matches!(who, Participant::Agent(_)),
                match who {
                    Participant::Agent(_) => staff_seq,
                    Participant::Visitor(_) => public_seq,
                },
            )
            .await?;
        for (audience, topic, seq) in [
            (Audience::Staff, Topic::Staff(c.id), staff_seq),
            (Audience::Visitor, Topic::Public(c.id), public_seq),
        ] {
            let frame = ServerFrame::Read {
                conversation_id: c.id.to_string(),
                seq,
                sender: Self::sender_of(who, audience),
            };
            self.publish(topic, &frame).await;
        }
        Ok(())
    }
}
