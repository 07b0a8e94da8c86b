//! Group commit on PostgreSQL (src/store/append_batch.rs): messages that
//! queue behind a write in flight go out as one statement, under the same
//! contract as a message written alone.
//!
//! Longer than 600 lines: each case needs the same row-lock choreography; one
//! binary keeps it in one place. Each case reads alone, top to bottom.
//!
//! Each test holds a row lock on one conversation so that its lane's write
//! waits, queues the messages it wants in one batch behind it, and lets go.

mod support;

use std::time::{Duration, Instant};

use careline::model::{ConversationId, ConversationStatus, Email, Role, SenderKind, User, UserId};
use careline::store::{Appended, BatchStats, NewChatMessage, Store, StoreError};
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
async fn conversations_of_one_lane(store: &Store, n: usize) -> Vec<ConversationId> {
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

async fn agent(store: &Store) -> User {
    store
        .create_user(
            &Email::parse("ann@example.com").unwrap(),
            "Ann",
            "h",
            Role::Agent,
        )
        .await
        .unwrap()
}

/// What a send came to: the seqs stored (staff, customers'), or why not.
#[derive(Debug, PartialEq)]
enum Sent {
    New(i64, Option<i64>),
    Duplicate(i64),
    Refused,
    Other,
}

/// One message to append: its body is also its client id.
#[derive(Clone, Copy)]
struct Msg {
    conversation: ConversationId,
    body: &'static str,
    /// The agent who writes it (a customer's message if none).
    agent: Option<UserId>,
    private: bool,
    only_in: Option<&'static [ConversationStatus]>,
    /// Stored only if the customer needs no email (see `NewChatMessage`).
    only_if_customer_seen_after: Option<i64>,
    /// Buttons offered with it: the bot's question (if not an agent's).
    options: &'static [&'static str],
}

fn customer(conversation: ConversationId, body: &'static str) -> Msg {
    Msg {
        conversation,
        body,
        agent: None,
        private: false,
        only_in: None,
        only_if_customer_seen_after: None,
        options: &[],
    }
}

async fn append(store: Store, msg: Msg) -> Result<Sent, StoreError> {
    let options: Vec<String> = msg.options.iter().map(|o| o.to_string()).collect();
    let appended = store
        .append_message(
            msg.conversation,
            NewChatMessage {
                sender_kind: if msg.agent.is_some() {
                    SenderKind::Agent
                } else if !options.is_empty() {
                    SenderKind::Bot
                } else {
                    SenderKind::Customer
                },
                sender_user_id: msg.agent,
                sender_name: "Someone",
                body: msg.body,
                private: msg.private,
                client_msg_id: msg.body,
                only_in: msg.only_in,
                only_assignee: None,
                only_if_customer_seen_after: msg.only_if_customer_seen_after,
                email: None,
                attachment: None,
                options: &options,
            },
        )
        .await?;
    Ok(match appended {
        Appended::New(message, _) => {
            assert_eq!(message.body, msg.body);
            assert_eq!(message.options, msg.options, "as the batch returns it");
            Sent::New(message.seq, message.public_seq)
        }
        Appended::Duplicate(message) => Sent::Duplicate(message.seq),
        Appended::Refused => Sent::Refused,
        _ => Sent::Other,
    })
}

async fn send(store: Store, msg: Msg) -> Sent {
    append(store, msg).await.expect("the append answers")
}

/// Appends each of `msgs` from its own task, and waits until all of them
/// are queued behind the write in flight.
async fn queue_behind(
    store: &Store,
    msgs: &[Msg],
) -> Vec<tokio::task::JoinHandle<Result<Sent, StoreError>>> {
    let handles = msgs
        .iter()
        .map(|msg| tokio::spawn(append(store.clone(), *msg)))
        .collect::<Vec<_>>();
    wait_for("the messages to queue", async || {
        store.append_queued() == msgs.len()
    })
    .await;
    handles
}

async fn results(
    handles: Vec<tokio::task::JoinHandle<Result<Sent, StoreError>>>,
) -> Vec<Result<Sent, StoreError>> {
    let mut all = Vec::new();
    for handle in handles {
        all.push(handle.await.unwrap());
    }
    all
}

/// Polls `check` every 10 ms for up to 10 s.
async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A connection holding conversation `id`'s row lock until its
/// transaction ends (`ROLLBACK`).
async fn lock_row(url: &str, id: ConversationId) -> PgConnection {
    let mut locker = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(id.0)
        .execute(&mut locker)
        .await
        .unwrap();
    locker
}

/// Waits until `n` statements of this database wait on a lock.
async fn lock_waiters(url: &str, n: i64) {
    let mut watcher = PgConnection::connect(url).await.unwrap();
    wait_for(&format!("{n} writes to wait on row locks"), async || {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        waiting == n
    })
    .await;
}

/// Holds conversation `id`'s row lock until the returned connection's
/// transaction ends; returns once a write of the store waits on it.
async fn hold_lock_until_a_write_waits(
    url: &str,
    id: ConversationId,
    write: impl FnOnce() -> tokio::task::JoinHandle<Sent>,
) -> (PgConnection, tokio::task::JoinHandle<Sent>) {
    let locker = lock_row(url, id).await;
    let waiting = write();
    lock_waiters(url, 1).await;
    (locker, waiting)
}

/// Sends "ahead" to `blocker` while its row is locked, queues `msgs` behind
/// it in the same lane, lets go, and returns what each of `msgs` came to
/// (after checking that the message ahead was stored).
async fn one_batch_behind(
    store: &Store,
    url: &str,
    blocker: ConversationId,
    msgs: &[Msg],
) -> Vec<Result<Sent, StoreError>> {
    let (mut locker, ahead) = hold_lock_until_a_write_waits(url, blocker, || {
        tokio::spawn(send(store.clone(), customer(blocker, "ahead")))
    })
    .await;
    let queued = queue_behind(store, msgs).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(ahead.await.unwrap(), Sent::New(1, Some(1)));
    results(queued).await
}

/// Whether conversation `id` holds no message at all.
async fn nothing_stored(store: &Store, id: ConversationId) -> bool {
    store
        .messages_after(id, 0, true, 10)
        .await
        .unwrap()
        .is_empty()
}

fn delta(before: BatchStats, after: BatchStats) -> (u64, u64, u64) {
    (
        after.batches - before.batches,
        after.messages - before.messages,
        after.failures - before.failures,
    )
}

#[tokio::test]
async fn messages_queued_behind_a_write_go_out_as_one_batch() {
    if !postgres_available("messages_queued_behind_a_write_go_out_as_one_batch").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let agent = agent(&store).await;
    let ids = conversations_of_one_lane(&store, 5).await;
    let [a, b, c, d, bot_only] = ids[..] else {
        unreachable!()
    };
    let before = store.append_batches().unwrap();

    // Queued behind a message to `a`: a second message to `a`, a private
    // note, two customers' messages, and one its conversation's state
    // refuses (it is still `bot`).
    const LIVE: &[ConversationStatus] = &[ConversationStatus::Live];
    let results: Vec<Sent> = one_batch_behind(
        &store,
        &db.url,
        a,
        &[
            customer(a, "a2"),
            Msg {
                agent: Some(agent.id),
                private: true,
                ..customer(b, "note")
            },
            customer(c, "c1"),
            customer(d, "d1"),
            Msg {
                only_in: Some(LIVE),
                ..customer(bot_only, "r1")
            },
        ],
    )
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(
        results,
        [
            Sent::New(2, Some(2)),
            Sent::New(1, None),
            Sent::New(1, Some(1)),
            Sent::New(1, Some(1)),
            Sent::Refused
        ]
    );
    assert_eq!(
        delta(before, store.append_batches().unwrap()),
        (2, 5, 0),
        "one batch for the first message, one for the four stored behind it"
    );
    let stored = store.messages_after(a, 0, true, 10).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["ahead", "a2"]
    );
    // The note took a staff seq only: the customers' numbering goes on at 1.
    assert_eq!(
        send(store.clone(), customer(b, "b1")).await,
        Sent::New(2, Some(1))
    );
    assert!(
        nothing_stored(&store, bot_only).await,
        "the refused message left nothing"
    );
    assert_eq!(store.append_queued(), 0);
}

/// A bot's question goes out in a batch like any message; its buttons stay
/// its own: the rows around it store none (NULL).
#[tokio::test]
async fn a_bot_question_in_a_batch_keeps_its_options_and_only_it() {
    if !postgres_available("a_bot_question_in_a_batch_keeps_its_options_and_only_it").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let ids = conversations_of_one_lane(&store, 4).await;
    let [a, b, c, d] = ids[..] else {
        unreachable!()
    };
    let before = store.append_batches().unwrap();
    let results: Vec<Sent> = one_batch_behind(
        &store,
        &db.url,
        a,
        &[
            customer(b, "b1"),
            Msg {
                options: &["Latest order", "Another \"order\", with ünïcode"],
                ..customer(c, "Which order?")
            },
            customer(d, "d1"),
        ],
    )
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(
        results,
        [
            Sent::New(1, Some(1)),
            Sent::New(1, Some(1)),
            Sent::New(1, Some(1))
        ]
    );
    assert_eq!(
        delta(before, store.append_batches().unwrap()),
        (2, 4, 0),
        "the three went out together"
    );
    for (id, options) in [
        (b, &[][..]),
        (c, &["Latest order", "Another \"order\", with ünïcode"][..]),
        (d, &[][..]),
    ] {
        let stored = store.messages_after(id, 0, false, 10).await.unwrap();
        assert_eq!(stored[0].options, options, "as a resume reads it");
    }
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let with_options: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE options IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(with_options, 1, "the others store NULL, not an empty list");
}

#[tokio::test]
async fn a_resend_in_a_batch_gets_its_stored_message_and_the_rest_are_stored() {
    if !postgres_available("a_resend_in_a_batch_gets_its_stored_message_and_the_rest_are_stored")
        .await
    {
        return;
    }
    let (store, db, _dir) = open().await;
    let ids = conversations_of_one_lane(&store, 4).await;
    let [a, b, c, d] = ids[..] else {
        unreachable!()
    };
    assert_eq!(
        send(store.clone(), customer(b, "b1")).await,
        Sent::New(1, Some(1))
    );
    let before = store.append_batches().unwrap();

    // A resend of b1 (its ack was lost) between two new messages.
    let results: Vec<Sent> = one_batch_behind(
        &store,
        &db.url,
        a,
        &[customer(c, "c1"), customer(b, "b1"), customer(d, "d1")],
    )
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(
        results,
        [
            Sent::New(1, Some(1)),
            Sent::Duplicate(1),
            Sent::New(1, Some(1))
        ]
    );
    assert_eq!(
        delta(before, store.append_batches().unwrap()),
        (2, 3, 0),
        "the resend was left out of its batch, which committed the others"
    );
    // It took no seq: the next message follows on.
    assert_eq!(
        send(store.clone(), customer(b, "b2")).await,
        Sent::New(2, Some(2))
    );
}

#[tokio::test]
async fn a_message_that_fails_its_batch_fails_alone() {
    if !postgres_available("a_message_that_fails_its_batch_fails_alone").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let ids = conversations_of_one_lane(&store, 4).await;
    let [a, b, c, d] = ids[..] else {
        unreachable!()
    };
    let before = store.append_batches().unwrap();

    // A message from an account that does not exist fails the statement
    // (its foreign key) and so the whole batch.
    let mut results = one_batch_behind(
        &store,
        &db.url,
        a,
        &[
            customer(b, "b1"),
            Msg {
                agent: Some(UserId(987_654)),
                ..customer(c, "c1")
            },
            customer(d, "d1"),
        ],
    )
    .await
    .into_iter();
    assert_eq!(results.next().unwrap().unwrap(), Sent::New(1, Some(1)));
    let failed = results.next().unwrap();
    assert!(
        matches!(&failed, Err(StoreError::Database(e)) if e.to_string().contains("foreign key")),
        "{failed:?}"
    );
    assert_eq!(results.next().unwrap().unwrap(), Sent::New(1, Some(1)));
    assert_eq!(
        delta(before, store.append_batches().unwrap()),
        (3, 3, 1),
        "the batch ahead; the failed one, then b1 and d1 each on their own"
    );
    assert!(nothing_stored(&store, c).await);
    assert_eq!(
        send(store.clone(), customer(c, "c2")).await,
        Sent::New(1, Some(1))
    );
}

/// Two instances batch the same two conversations in opposite orders. If a
/// batch locked its rows in arrival order, the second instance would hold X
/// and wait for Y while the first held Y and waited for X: PostgreSQL would
/// abort one batch after a second (a deadlock). Locking in id order, both
/// wait for X and go one after the other.
#[tokio::test]
async fn batches_of_two_instances_lock_in_one_order_and_never_deadlock() {
    if !postgres_available("batches_of_two_instances_lock_in_one_order_and_never_deadlock").await {
        return;
    }
    let (first, db, _dir) = open().await;
    let second = Store::open(&db.url, 5).await.expect("a second instance");
    let ids = conversations_of_one_lane(&first, 4).await;
    let [blocker_1, blocker_2, x, y] = ids[..] else {
        unreachable!()
    };
    let before = (
        first.append_batches().unwrap(),
        second.append_batches().unwrap(),
    );
    let mut hold_x = lock_row(&db.url, x).await;

    // The second instance: [X, Y] in one batch, waiting for X.
    let (mut hold, ahead) = hold_lock_until_a_write_waits(&db.url, blocker_2, || {
        tokio::spawn(send(second.clone(), customer(blocker_2, "ahead-2")))
    })
    .await;
    let second_batch = queue_behind(&second, &[customer(x, "x-2"), customer(y, "y-2")]).await;
    sqlx::query("ROLLBACK").execute(&mut hold).await.unwrap();
    assert_eq!(ahead.await.unwrap(), Sent::New(1, Some(1)));
    lock_waiters(&db.url, 1).await;

    // The first instance: [Y, X] in one batch, behind it on X.
    let mut hold = lock_row(&db.url, blocker_1).await;
    let ahead = tokio::spawn(send(first.clone(), customer(blocker_1, "ahead-1")));
    lock_waiters(&db.url, 2).await;
    let first_batch = queue_behind(&first, &[customer(y, "y-1"), customer(x, "x-1")]).await;
    sqlx::query("ROLLBACK").execute(&mut hold).await.unwrap();
    assert_eq!(ahead.await.unwrap(), Sent::New(1, Some(1)));
    lock_waiters(&db.url, 2).await;

    sqlx::query("ROLLBACK").execute(&mut hold_x).await.unwrap();
    let second_results = results(second_batch).await;
    let first_results = results(first_batch).await;
    for result in second_results.iter().chain(&first_results) {
        assert!(matches!(result, Ok(Sent::New(..))), "{result:?}");
    }
    assert_eq!(
        (
            delta(before.0, first.append_batches().unwrap()),
            delta(before.1, second.append_batches().unwrap()),
        ),
        ((2, 3, 0), (2, 3, 0)),
        "each instance: its blocker, then one batch of both conversations; none failed"
    );
    for id in [x, y] {
        let seqs: Vec<i64> = first
            .messages_after(id, 0, true, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, [1, 2], "conversation {id}");
    }
}

/// Routing holds the agent's row while it assigns a conversation, and a
/// message by that agent checks the agent's key (its foreign key). Routing
/// used to lock the row `FOR UPDATE`, which that check waits for: a batch
/// holding the conversation routing wanted next deadlocked with it. With
/// `FOR NO KEY UPDATE` the agent's reply goes through while routing waits.
#[tokio::test]
async fn an_agents_reply_is_not_held_up_by_routing_to_that_agent() {
    if !postgres_available("an_agents_reply_is_not_held_up_by_routing_to_that_agent").await {
        return;
    }
    use careline::store::{Assignment, Wait};
    let (store, db, _dir) = open().await;
    let agent = agent(&store).await;
    let ids = conversations_of_one_lane(&store, 2).await;
    let [hers, waiting] = ids[..] else {
        unreachable!()
    };
    for id in [hers, waiting] {
        assert!(store.escalate(id, "Help", "Careline").await.unwrap());
    }
    assert!(store.claim(hers, &agent).await.unwrap());

    // Routing takes the agent's row, then waits for the waiting
    // conversation (locked here) while it is in the middle of assigning.
    let mut locker = lock_row(&db.url, waiting).await;
    let routing = {
        let store = store.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            store
                .assign_within_capacity(waiting, &agent, Wait::Yes)
                .await
        })
    };
    lock_waiters(&db.url, 1).await;

    let reply = tokio::spawn(send(
        store.clone(),
        Msg {
            agent: Some(agent.id),
            ..customer(hers, "on it")
        },
    ));
    let replied = tokio::time::timeout(Duration::from_secs(10), reply).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(
        replied.expect("the reply waited for routing").unwrap(),
        Sent::New(1, Some(1))
    );
    assert_eq!(routing.await.unwrap().unwrap(), Assignment::Assigned);
}

#[tokio::test]
async fn a_reply_for_an_away_customer_is_left_out_of_its_batch() {
    if !postgres_available("a_reply_for_an_away_customer_is_left_out_of_its_batch").await {
        return;
    }
    let (store, db, _dir) = open().await;
    let agent = agent(&store).await;
    let ids = conversations_of_one_lane(&store, 2).await;
    let [blocker, anonymous] = ids[..] else {
        unreachable!()
    };
    // Grace left an address and is gone; her conversation is in the same lane.
    let site = store.default_site().await.unwrap();
    let grace = store
        .create_visitor(site.id, "grace-token", "Grace", "grace@example.com")
        .await
        .unwrap();
    store.visitor_left(grace.id).await.unwrap();
    let away = loop {
        let c = store.create_conversation(site.id, grace.id).await.unwrap();
        if store.append_lane(c.id) == store.append_lane(blocker) {
            break c.id;
        }
    };
    let before = store.append_batches().unwrap();

    let reply = |conversation, body| Msg {
        agent: Some(agent.id),
        only_if_customer_seen_after: Some(careline::store::now_ms() - 60_000),
        ..customer(conversation, body)
    };
    let results: Vec<Sent> = one_batch_behind(
        &store,
        &db.url,
        blocker,
        &[reply(away, "to grace"), reply(anonymous, "to anonymous")],
    )
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(results, [Sent::Refused, Sent::New(1, Some(1))]);
    assert_eq!(
        delta(before, store.append_batches().unwrap()),
        (2, 2, 0),
        "the message ahead, then the batch that left Grace's reply out"
    );
    assert!(
        nothing_stored(&store, away).await,
        "the refused reply left nothing"
    );
}
