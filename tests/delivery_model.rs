//! Property test of the delivery contract: random interleavings of sends,
//! retries with the same client_msg_id, private notes, and resumes from any
//! `after_seq`, on both sides, checked against a model:
//! - every distinct message is stored once, a retry gets the same seq;
//! - each audience's numbering runs 1, 2, 3… without a gap;
//! - a resume after k returns exactly what that audience has after k, in
//!   order; private notes never reach the visitor.

use std::collections::BTreeMap;
use std::sync::Arc;

use careline::bot::faq::FaqBot;
use careline::bus::LocalBus;
use careline::domain::chat::{Audience, Chat, ChatConfig};
use careline::model::Visitor;
use careline::model::{Email, Role, User};
use careline::protocol::ServerFrame;
use careline::store::Store;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    VisitorSend(u8),
    AgentSend(u8),
    AgentNote(u8),
    VisitorResume(u8),
    AgentResume(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8).prop_map(Op::VisitorSend),
        (0u8..8).prop_map(Op::AgentSend),
        (0u8..4).prop_map(Op::AgentNote),
        (0u8..25).prop_map(Op::VisitorResume),
        (0u8..25).prop_map(Op::AgentResume),
    ]
}

struct World {
    chat: Arc<Chat>,
    visitor: Visitor,
    agent: User,
    conversation: careline::model::ConversationId,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}/c.db?mode=rwc", dir.path().display()),
        3,
    )
    .await
    .unwrap();
    let site = store.default_site().await.unwrap();
    let agent = store
        .create_user(
            &Email::parse("a@example.com").unwrap(),
            "Agent",
            "x",
            Role::Agent,
        )
        .await
        .unwrap();
    let visitor = store
        .create_visitor(site.id, "token-hash", "Vera", "")
        .await
        .unwrap();
    let conversation = store
        .create_conversation(site.id, visitor.id)
        .await
        .unwrap()
        .id;
    // A live conversation: no bot speaks in the middle of the model.
    assert!(store.escalate(conversation, "Model", "test").await.unwrap());
    assert!(store.claim(conversation, &agent).await.unwrap());
    let bot = Arc::new(FaqBot::new(store.clone(), 0.45));
    let chat = Arc::new(Chat::new(
        store,
        Arc::new(LocalBus::standalone()),
        bot,
        ChatConfig::default(),
    ));
    World {
        chat,
        visitor,
        agent,
        conversation,
        _dir: dir,
    }
}

/// Everything a resume after `after` sends, as (seq, body).
async fn replay(w: &World, audience: Audience, after: i64) -> Vec<(i64, String)> {
    let c = w
        .chat
        .store()
        .conversation(w.conversation)
        .await
        .unwrap()
        .unwrap();
    let mut cursor = w.chat.replay_start(&c, audience, after).await.unwrap();
    let mut out = Vec::new();
    loop {
        let (frames, next, more) = w.chat.replay_page(&c, audience, cursor).await.unwrap();
        for frame in frames {
            if let ServerFrame::Message(m) = frame {
                out.push((m.seq, m.body));
            }
        }
        cursor = next;
        if !more {
            return out;
        }
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let w = world().await;
    // The model: bodies in the order they were first stored, per audience,
    // and the seq each distinct message got.
    let mut staff: Vec<String> = Vec::new();
    let mut public: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for op in ops {
        match op {
            Op::VisitorSend(n) | Op::AgentSend(n) | Op::AgentNote(n) => {
                let (id, private) = match op {
                    Op::VisitorSend(_) => (format!("v{n}"), false),
                    Op::AgentSend(_) => (format!("a{n}"), false),
                    _ => (format!("n{n}"), true),
                };
                let sent = match op {
                    Op::VisitorSend(_) => {
                        w.chat
                            .send_as_visitor(&w.visitor, w.conversation, &id, &id, None)
                            .await
                    }
                    _ => {
                        w.chat
                            .send_as_agent(&w.agent, w.conversation, &id, &id, private, None)
                            .await
                    }
                }
                .unwrap();
                // The ack's seq, in the sender's own numbering.
                let ack = if matches!(op, Op::VisitorSend(_)) {
                    sent.message.public_seq.unwrap()
                } else {
                    sent.message.seq
                };
                match seen.get(&id) {
                    Some(first) => {
                        prop_assert!(sent.duplicate, "{id}: a retry is recognised");
                        prop_assert_eq!(*first, ack, "{}: a retry gets the same seq", id);
                    }
                    None => {
                        prop_assert!(!sent.duplicate);
                        staff.push(id.clone());
                        if !private {
                            public.push(id.clone());
                        }
                        let expected = if matches!(op, Op::VisitorSend(_)) {
                            public.len()
                        } else {
                            staff.len()
                        };
                        prop_assert_eq!(
                            ack,
                            expected as i64,
                            "{}: the next seq of its audience",
                            id
                        );
                        seen.insert(id, ack);
                    }
                }
            }
            Op::VisitorResume(after) | Op::AgentResume(after) => {
                let (audience, model) = match op {
                    Op::VisitorResume(_) => (Audience::Visitor, &public),
                    _ => (Audience::Staff, &staff),
                };
                let after = i64::from(after);
                let got = replay(&w, audience, after).await;
                let expected: Vec<(i64, String)> = model
                    .iter()
                    .enumerate()
                    .map(|(i, body)| (i as i64 + 1, body.clone()))
                    .filter(|(seq, _)| *seq > after)
                    .collect();
                prop_assert_eq!(got, expected, "{:?} resume after {}", audience, after);
            }
        }
    }
    // Finally: the visitor never saw a note.
    let all_public = replay(&w, Audience::Visitor, 0).await;
    prop_assert!(all_public.iter().all(|(_, body)| !body.starts_with('n')));
    Ok(())
}

proptest! {
    // 48 interleavings in every `cargo test`; `DELIVERY_CASES=5000` for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("DELIVERY_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_delivery_contract_holds_for_any_interleaving(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
