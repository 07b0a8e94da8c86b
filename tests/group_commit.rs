//! Group commit on PostgreSQL (src/store/append_batch.rs): messages that
//! queue behind a write in flight go out as one statement, under the same
//! contract as a message written alone.
//!
//! Each test holds a row lock on one conversation so that its lane's write
//! waits, queues the messages it wants in one batch behind it, and lets go.

mod support;

use std::time::{Duration, Instant};

use careline::domain::{ConversationStatus, SenderKind};
use careline::store::{Appended, NewChatMessage, Store};
use sqlx::{Connection, PgConnection};
use support::databases::postgres_available;
use support::{Database, TestDb};

async fn open() -> (Store, TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let test_db = TestDb::create(Database::Postgres, dir.path()).await;
    let store = Store::open(&test_db.url, 5).await.expect("store opens");
    (store, test_db, dir)
}

/// `n` new conversations whose messages the same lane writes.
async fn conversations_of_one_lane(store: &Store, n: usize) -> Vec<i64> {
    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "token-hash", "Visitor", "")
        .await
        .unwrap();
    let mut lane = None;
    let mut ids = Vec::new();
    while ids.len() < n {
        let c = store
            .create_conversation(site.id, visitor.id)
            .await
            .unwrap();
        let this = store.append_lane(c.id).expect("PostgreSQL batches");
        if *lane.get_or_insert(this) == this {
            ids.push(c.id);
        }
    }
    ids
}

/// What a customer's send came to: the seq stored, or why not.
#[derive(Debug, PartialEq)]
enum Sent {
    New(i64),
    Duplicate(i64),
    Refused,
    Other,
}

/// Sends `body` (its own client id) as the customer; `only_in` as the chat
/// passes it for a state-bound message.
async fn send(
    store: Store,
    conversation: i64,
    body: &'static str,
    only_in: Option<&'static [ConversationStatus]>,
) -> Sent {
    let appended = store
        .append_message(
            conversation,
            NewChatMessage {
                sender_kind: SenderKind::Customer,
                sender_user_id: None,
                sender_name: "Visitor",
                body,
                private: false,
                client_msg_id: body,
                only_in,
                only_assignee: None,
                email: None,
                attachment: None,
            },
        )
        .await
        .expect("the append answers");
    match appended {
        Appended::New(message, _) => {
            assert_eq!(message.body, body);
            Sent::New(message.seq)
        }
        Appended::Duplicate(message) => Sent::Duplicate(message.seq),
        Appended::Refused => Sent::Refused,
        _ => Sent::Other,
    }
}

/// Polls `check` every 10 ms for up to 10 s.
async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Holds conversation `id`'s row lock until the returned connection's
/// transaction ends; returns once a write of the store waits on it.
async fn hold_lock_until_a_write_waits(
    url: &str,
    id: i64,
    write: impl FnOnce() -> tokio::task::JoinHandle<Sent>,
) -> (PgConnection, tokio::task::JoinHandle<Sent>) {
    let mut locker = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut locker)
        .await
        .unwrap();
    let waiting = write();
    let mut watcher = PgConnection::connect(url).await.unwrap();
    wait_for("the first write to wait on the row lock", async || {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        waiting == 1
    })
    .await;
    (locker, waiting)
}

#[tokio::test]
async fn messages_queued_behind_a_write_go_out_as_one_batch() {
    if !postgres_available("messages_queued_behind_a_write_go_out_as_one_batch").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let ids = conversations_of_one_lane(&store, 5).await;
    let [a, b, c, d, bot_only] = ids[..] else {
        unreachable!()
    };
    let before = store.append_batches().unwrap();

    let (mut locker, first) = hold_lock_until_a_write_waits(&db.url, a, || {
        tokio::spawn(send(store.clone(), a, "a1", None))
    })
    .await;
    // Queued behind it: a second message of the same conversation, three of
    // others, and one its conversation's state refuses (it is still `bot`).
    const LIVE: &[ConversationStatus] = &[ConversationStatus::Live];
    let queued = [
        (a, "a2", None),
        (b, "b1", None),
        (c, "c1", None),
        (d, "d1", None),
        (bot_only, "r1", Some(LIVE)),
    ]
    .map(|(id, body, only_in)| tokio::spawn(send(store.clone(), id, body, only_in)));
    wait_for("five messages queued", async || store.append_queued() == 5).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    assert_eq!(first.await.unwrap(), Sent::New(1));
    let mut results = Vec::new();
    for handle in queued {
        results.push(handle.await.unwrap());
    }
    assert_eq!(
        results,
        [
            Sent::New(2),
            Sent::New(1),
            Sent::New(1),
            Sent::New(1),
            Sent::Refused
        ]
    );
    let after = store.append_batches().unwrap();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (2, 5),
        "one batch for the first message, one for the four stored behind it"
    );
    let stored = store.messages_after(a, 0, true, 10).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    assert!(
        store
            .messages_after(bot_only, 0, true, 10)
            .await
            .unwrap()
            .is_empty(),
        "the refused message left nothing"
    );
    assert_eq!(store.append_queued(), 0);
}

#[tokio::test]
async fn a_retry_in_a_batch_sends_each_message_alone_and_leaves_no_gap() {
    if !postgres_available("a_retry_in_a_batch_sends_each_message_alone_and_leaves_no_gap").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let ids = conversations_of_one_lane(&store, 4).await;
    let [a, b, c, d] = ids[..] else {
        unreachable!()
    };
    assert_eq!(send(store.clone(), b, "b1", None).await, Sent::New(1));
    let before = store.append_batches().unwrap();

    let (mut locker, first) = hold_lock_until_a_write_waits(&db.url, a, || {
        tokio::spawn(send(store.clone(), a, "a1", None))
    })
    .await;
    // A resend of b1 (its ack was lost) between two new messages: the batch
    // fails on b1's unique client id as a whole, and nothing of it stays.
    let queued = [(c, "c1"), (b, "b1"), (d, "d1")]
        .map(|(id, body)| tokio::spawn(send(store.clone(), id, body, None)));
    wait_for("three messages queued", async || store.append_queued() == 3).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    assert_eq!(first.await.unwrap(), Sent::New(1));
    let mut results = Vec::new();
    for handle in queued {
        results.push(handle.await.unwrap());
    }
    assert_eq!(
        results,
        [Sent::New(1), Sent::Duplicate(1), Sent::New(1)],
        "each message, written alone, got its own answer"
    );
    let after = store.append_batches().unwrap();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "only the first batch committed"
    );
    // The failed batch took no seq: the next messages follow on.
    assert_eq!(send(store.clone(), c, "c2", None).await, Sent::New(2));
    assert_eq!(send(store.clone(), b, "b2", None).await, Sent::New(2));
    for (id, expected) in [(b, 2), (c, 2), (d, 1)] {
        let stored = store.messages_after(id, 0, true, 10).await.unwrap();
        assert_eq!(stored.len(), expected, "conversation {id}");
    }
}
