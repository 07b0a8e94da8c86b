//! The storage conformance suite: every backend (SQLite, PostgreSQL,
//! MariaDB/MySQL) must pass the same checks through the same `Store` API.
//!
//! Longer than 600 lines: one suite every backend must pass, so that a new
//! backend runs all of it by adding one line; each check reads alone, top to
//! bottom.

mod support;

use careline::domain::tickets::{self, TicketUpdate};

use std::sync::Arc;

use careline::bot::faq::FaqBot;
use careline::bus::LocalBus;
use careline::domain::accounts;
use careline::domain::chat::{Chat, ChatConfig};
use careline::model::{
    ConversationId, Email, EventKind, Priority, Role, SenderKind, TicketNumber, TicketStatus, User,
};
use careline::store::{
    Appended, AssigneeFilter, NewChatMessage, Store, StoreError, TicketCursor, TicketFilter, now_ms,
};
use support::{Database, TestDb, databases::backends};

async fn open(db: Database) -> (Store, TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let test_db = TestDb::create(db, dir.path()).await;
    let store = Store::open(&test_db.url, 5).await.expect("store opens");
    (store, test_db, dir)
}

/// The live side of the ticket operations (they publish their own
/// changes): an in-process bus nobody listens to, the built-in bot.
fn chat_on(store: &Store) -> Arc<Chat> {
    Arc::new(Chat::new(
        store.clone(),
        Arc::new(LocalBus::standalone()),
        Arc::new(FaqBot::new(store.clone(), 0.5)),
        ChatConfig::default(),
    ))
}

async fn user(store: &Store, email: &str, role: Role) -> User {
    store
        .create_user(
            &Email::parse(email).unwrap(),
            email.split('@').next().unwrap(),
            "not-a-real-hash",
            role,
        )
        .await
        .expect("user created")
}

/// Runs `check` on every backend available here.
macro_rules! conformance {
    ($name:ident, $check:ident) => {
        #[tokio::test]
        async fn $name() {
            for db in backends(stringify!($name)).await {
                let (store, _db, _dir) = open(db).await;
                $check(&store).await;
                eprintln!("{} passed on {:?}", stringify!($name), db);
            }
        }
    };
}

conformance!(users_are_unique_by_email, users_unique);
async fn users_unique(store: &Store) {
    let ada = user(store, "ada@example.com", Role::Customer).await;
    assert_eq!(ada.role, Role::Customer);
    let again = store
        .create_user(
            &Email::parse("ADA@example.com").unwrap(),
            "Other",
            "h",
            Role::Agent,
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Duplicate("email"))),
        "{again:?}"
    );
    let (found, hash) = store
        .user_with_hash(&Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ada.id);
    assert_eq!(hash, "not-a-real-hash");
    assert!(!store.any_admin_exists().await.unwrap());
    user(store, "root@example.com", Role::Admin).await;
    assert!(store.any_admin_exists().await.unwrap());
    assert_eq!(store.staff().await.unwrap().len(), 1);
}

conformance!(sessions_expire_and_end, sessions);
async fn sessions(store: &Store) {
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let now = careline::store::now_ms();
    store
        .create_session("live", ada.id, now + 60_000)
        .await
        .unwrap();
    store.create_session("old", ada.id, now - 1).await.unwrap();
    assert_eq!(
        store.session_user("live").await.unwrap().unwrap().id,
        ada.id
    );
    assert!(
        store.session_user("old").await.unwrap().is_none(),
        "expired sessions are not accepted"
    );
    assert!(store.session_user("never").await.unwrap().is_none());
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    store.delete_session("live").await.unwrap();
    assert!(store.session_user("live").await.unwrap().is_none());
}

conformance!(tickets_number_thread_and_timeline, ticket_lifecycle);
async fn ticket_lifecycle(store: &Store) {
    let chat = chat_on(store);
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let bob = user(store, "bob@example.com", Role::Customer).await;
    let agent = user(store, "agent@example.com", Role::Agent).await;

    let first = tickets::raise(
        &chat,
        &ada,
        "Printer is on fire",
        "Smoke everywhere",
        Priority::Urgent,
    )
    .await
    .unwrap();
    let second = tickets::raise(
        &chat,
        &bob,
        "Invoice 50%_off wrong",
        "Numbers",
        Priority::Low,
    )
    .await
    .unwrap();
    assert_eq!(first.number, TicketNumber(1001));
    assert_eq!(second.number, TicketNumber(1002));
    assert_eq!(first.status, TicketStatus::Open);
    assert_eq!(first.customer.email, "ada@example.com");

    // Thread: gap-free seq, private notes for staff only.
    tickets::reply(&chat, &agent, first.number, "Leave the building", None)
        .await
        .unwrap();
    tickets::note(&chat, &agent, first.number, "Called the fire brigade", None)
        .await
        .unwrap();
    tickets::reply(&chat, &ada, first.number, "Done", None)
        .await
        .unwrap();
    let staff_view = tickets::view(store, &agent, first.number).await.unwrap();
    let seqs: Vec<i64> = staff_view.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(staff_view.messages[1].sender_kind, SenderKind::Agent);
    assert!(staff_view.messages[2].private);
    let customer_view = tickets::view(store, &ada, first.number).await.unwrap();
    assert_eq!(customer_view.messages.len(), 3);
    assert!(customer_view.messages.iter().all(|m| !m.private));
    assert!(
        customer_view
            .timeline
            .iter()
            .all(|e| e.kind != EventKind::Note)
    );
    assert!(
        staff_view
            .timeline
            .iter()
            .any(|e| e.kind == EventKind::Note)
    );
    assert!(staff_view.ticket.first_response_at.is_some());

    // Another customer cannot see it.
    assert!(matches!(
        tickets::view(store, &bob, first.number).await,
        Err(careline::domain::DomainError::NotFound)
    ));

    // Updates record one timeline entry per real change and mirror the conversation.
    let update = TicketUpdate {
        status: Some(TicketStatus::Resolved),
        priority: Some(Priority::High),
        assignee: Some(Some(agent.id)),
    };
    let updated = tickets::update(&chat, &agent, first.number, update)
        .await
        .unwrap();
    assert_eq!(updated.status, TicketStatus::Resolved);
    assert_eq!(updated.priority, Priority::High);
    assert_eq!(updated.assignee.as_ref().and_then(|a| a.id), Some(agent.id));
    assert!(updated.resolved_at.is_some());
    let kinds: Vec<EventKind> = tickets::view(store, &agent, first.number)
        .await
        .unwrap()
        .timeline
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Opened,
            EventKind::AgentReply,
            EventKind::Note,
            EventKind::CustomerReply,
            EventKind::Status,
            EventKind::Priority,
            EventKind::Assigned
        ]
    );
    // The customer's reply reopens a resolved ticket and clears its resolution time.
    let reopened = tickets::reply(&chat, &ada, first.number, "It is burning again", None)
        .await
        .unwrap();
    assert_eq!(reopened.status, TicketStatus::Open);
    assert!(reopened.resolved_at.is_none());

    // Filters and search.
    let all = TicketFilter::default();
    assert_eq!(
        tickets::list(store, &agent, all.clone())
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        tickets::list(store, &ada, all.clone()).await.unwrap().len(),
        1,
        "customers see only their own"
    );
    let agent_ref = &agent;
    let by = move |f: TicketFilter| async move {
        tickets::list(store, agent_ref, f)
            .await
            .unwrap()
            .iter()
            .map(|t| t.number.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(TicketFilter {
            priority: Some(Priority::Low),
            ..all.clone()
        })
        .await,
        vec![1002]
    );
    assert_eq!(
        by(TicketFilter {
            assignee: AssigneeFilter::Unassigned,
            ..all.clone()
        })
        .await,
        vec![1002]
    );
    assert_eq!(
        by(TicketFilter {
            assignee: AssigneeFilter::Me,
            ..all.clone()
        })
        .await,
        vec![1001]
    );
    assert_eq!(
        by(TicketFilter {
            status: Some(TicketStatus::Open),
            ..all.clone()
        })
        .await,
        vec![1001, 1002]
    );
    assert_eq!(
        by(TicketFilter {
            query: Some("#1002".into()),
            ..all.clone()
        })
        .await,
        vec![1002]
    );
    assert_eq!(
        by(TicketFilter {
            query: Some("PRINTER".into()),
            ..all.clone()
        })
        .await,
        vec![1001]
    );
    assert_eq!(
        by(TicketFilter {
            query: Some("bob@".into()),
            ..all.clone()
        })
        .await,
        vec![1002]
    );
    assert_eq!(
        by(TicketFilter {
            query: Some("50%_".into()),
            ..all.clone()
        })
        .await,
        vec![1002],
        "wildcards match literally"
    );
    assert_eq!(
        by(TicketFilter {
            query: Some("5%".into()),
            ..all.clone()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        by(TicketFilter {
            limit: 1,
            offset: 1,
            ..all.clone()
        })
        .await
        .len(),
        1
    );
    // A page by key: after each ticket come exactly the ones below it.
    let listed = tickets::list(store, &agent, all.clone()).await.unwrap();
    for (i, ticket) in listed.iter().enumerate() {
        let after = by(TicketFilter {
            after: Some(TicketCursor::of(ticket)),
            ..all.clone()
        })
        .await;
        let below: Vec<i64> = listed[i + 1..].iter().map(|t| t.number.0).collect();
        assert_eq!(after, below, "after #{}", ticket.number.0);
    }
}

conformance!(closed_tickets_refuse_customer_replies, closed_refuses);
async fn closed_refuses(store: &Store) {
    let chat = chat_on(store);
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let t = tickets::raise(&chat, &ada, "Subject", "Body", Priority::Normal)
        .await
        .unwrap();
    let close = TicketUpdate {
        status: Some(TicketStatus::Closed),
        ..TicketUpdate::default()
    };
    tickets::update(&chat, &agent, t.number, close)
        .await
        .unwrap();
    let refused = tickets::reply(&chat, &ada, t.number, "hello?", None).await;
    assert!(
        matches!(refused, Err(careline::domain::DomainError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        tickets::view(store, &ada, t.number)
            .await
            .unwrap()
            .messages
            .len(),
        1,
        "nothing stored"
    );
    // Customers cannot write notes or update tickets: same answer as a missing ticket.
    assert!(matches!(
        tickets::note(&chat, &ada, t.number, "x", None).await,
        Err(careline::domain::DomainError::NotFound)
    ));
    assert!(matches!(
        tickets::update(&chat, &ada, t.number, TicketUpdate::default()).await,
        Err(careline::domain::DomainError::NotFound)
    ));
}

conformance!(
    concurrent_creates_get_distinct_consecutive_numbers,
    parallel_numbers
);
async fn parallel_numbers(store: &Store) {
    let mut customers = Vec::new();
    for i in 0..4 {
        customers.push(user(store, &format!("c{i}@example.com"), Role::Customer).await);
    }
    let mut tasks = Vec::new();
    let chat = chat_on(store);
    for i in 0..24 {
        let chat = chat.clone();
        let customer = customers[i % customers.len()].clone();
        tasks.push(tokio::spawn(async move {
            tickets::raise(
                &chat,
                &customer,
                &format!("Parallel {i}"),
                "body",
                Priority::Normal,
            )
            .await
            .expect("concurrent create succeeds")
            .number
            .0
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort();
    assert_eq!(
        numbers,
        (1001..1025).collect::<Vec<_>>(),
        "unique and gap-free"
    );
}

conformance!(migrations_run_once_and_reopen_cleanly, reopen);
async fn reopen(store: &Store) {
    store
        .migrate()
        .await
        .expect("running migrations again is a no-op");
    store.ping().await.unwrap();
}

#[tokio::test]
async fn accounts_log_in_with_the_same_answer_for_unknown_and_wrong() {
    for db in backends("accounts_log_in").await {
        let (store, _db, _dir) = open(db).await;
        accounts::register(
            &store,
            "Ada",
            "ada@example.com",
            "long password",
            "http://careline.test",
        )
        .await
        .unwrap();
        let wrong = accounts::login(&store, "ada@example.com", "not the password", 1)
            .await
            .err()
            .unwrap()
            .to_string();
        let unknown = accounts::login(&store, "nobody@example.com", "not the password", 1)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(wrong, unknown);
        let session = accounts::login(&store, "ADA@example.com", "long password", 1)
            .await
            .unwrap();
        assert_eq!(
            accounts::session_user(&store, &session.token)
                .await
                .unwrap()
                .unwrap()
                .email,
            "ada@example.com"
        );
    }
}

conformance!(changes_decided_on_a_stale_ticket_are_refused, stale_changes);
async fn stale_changes(store: &Store) {
    let chat = chat_on(store);
    use careline::store::TicketActivity;
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let t = tickets::raise(&chat, &ada, "Subject", "Body", Priority::Normal)
        .await
        .unwrap();
    // Someone closes the ticket after `t` was read…
    let close = TicketUpdate {
        status: Some(TicketStatus::Closed),
        ..TicketUpdate::default()
    };
    tickets::update(&chat, &agent, t.number, close)
        .await
        .unwrap();
    // …so an action decided on the open ticket must not apply.
    let mut activity = TicketActivity::new(&ada);
    activity.expect = Some((t.status, t.priority, None));
    activity.status = Some(TicketStatus::Open);
    let result = store.record_ticket_activity(&t, activity).await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    let now = tickets::find(store, &agent, t.number).await.unwrap();
    assert_eq!(now.status, TicketStatus::Closed, "nothing was applied");
}

conformance!(
    private_notes_do_not_number_customer_messages,
    note_numbering
);
async fn note_numbering(store: &Store) {
    let chat = chat_on(store);
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let t = tickets::raise(&chat, &ada, "Subject", "Body", Priority::Normal)
        .await
        .unwrap();
    tickets::note(&chat, &agent, t.number, "internal", None)
        .await
        .unwrap();
    tickets::reply(&chat, &agent, t.number, "public", None)
        .await
        .unwrap();
    let staff = tickets::view(store, &agent, t.number)
        .await
        .unwrap()
        .messages;
    let pairs: Vec<(i64, Option<i64>)> = staff.iter().map(|m| (m.seq, m.public_seq)).collect();
    assert_eq!(pairs, vec![(1, Some(1)), (2, None), (3, Some(2))]);
}

/// A bot's question keeps its buttons: stored with it, and read back by
/// every read that builds messages (resume, a retried write, ticket pages);
/// every other message stores none (NULL, not an empty list).
#[tokio::test]
async fn a_bot_question_keeps_its_options_and_other_messages_store_none() {
    for db in backends("a_bot_question_keeps_its_options").await {
        let (store, test_db, _dir) = open(db).await;
        bot_options(&store, &test_db.url).await;
        eprintln!("bot options passed on {db:?}");
    }
}

async fn bot_options(store: &Store, url: &str) {
    use careline::model::ConversationStatus;

    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "options-token", "Dana", "")
        .await
        .unwrap();
    let c = store
        .create_conversation(site.id, visitor.id)
        .await
        .unwrap();
    let offered = vec!["Latest order".to_string(), "Another order".to_string()];
    let append = async |kind: SenderKind, body: &str, options: &[String]| {
        store
            .append_message(
                c.id,
                NewChatMessage {
                    sender_kind: kind,
                    sender_user_id: None,
                    sender_name: if kind == SenderKind::Bot {
                        "Assistant"
                    } else {
                        "Dana"
                    },
                    body,
                    private: false,
                    client_msg_id: body,
                    only_in: (kind == SenderKind::Bot).then_some(&[ConversationStatus::Bot][..]),
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options,
                },
            )
            .await
            .unwrap()
    };
    let Appended::New(asked, _) = append(SenderKind::Customer, "Where is my order?", &[]).await
    else {
        panic!("the customer's message is stored")
    };
    assert!(asked.options.is_empty());
    let Appended::New(question, _) = append(SenderKind::Bot, "Which order?", &offered).await else {
        panic!("the bot's question is stored")
    };
    assert_eq!(question.options, offered, "as the write returns it");
    let Appended::Duplicate(again) = append(SenderKind::Bot, "Which order?", &offered).await else {
        panic!("a retried write is the stored message")
    };
    assert_eq!(again.options, offered, "as a retry finds it");

    // What a resume reads, and what a ticket page reads.
    let replayed = store.messages_after(c.id, 0, false, 10).await.unwrap();
    let thread = store.messages(c.id, true).await.unwrap();
    for messages in [replayed, thread] {
        let options: Vec<(&str, &[String])> = messages
            .iter()
            .map(|m| (m.body.as_str(), m.options.as_slice()))
            .collect();
        assert_eq!(
            options,
            [
                ("Where is my order?", &[][..]),
                ("Which order?", &offered[..])
            ]
        );
    }

    // In the table: a JSON array of strings, or NULL.
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let stored: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT options FROM messages WHERE conversation_id = {} ORDER BY seq",
        c.id
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], None, "a message without options stores NULL");
    let json: Vec<String> = serde_json::from_str(stored[1].as_deref().unwrap()).unwrap();
    assert_eq!(json, offered);
}

conformance!(
    one_address_gets_at_most_a_days_worth_of_emails,
    emails_per_address
);
async fn emails_per_address(store: &Store) {
    use careline::store::EMAILS_PER_ADDRESS_PER_DAY;
    for i in 0..EMAILS_PER_ADDRESS_PER_DAY + 5 {
        for to in [
            "flooded@example.com",
            format!("other{i}@example.com").as_str(),
        ] {
            let email = careline::store::NewEmail {
                to: to.into(),
                template: "agent_reply",
                payload: serde_json::json!({"ticket_number": i, "agent": "Alan", "body": "hi"}),
            };
            store.enqueue_email(&email).await.unwrap();
        }
    }
    let queued = store.outbox(1000).await.unwrap();
    let to_flooded = queued
        .iter()
        .filter(|e| e.to_email == "flooded@example.com")
        .count() as i64;
    assert_eq!(
        to_flooded, EMAILS_PER_ADDRESS_PER_DAY,
        "the rest were given up"
    );
    assert_eq!(
        queued.len() as i64 - to_flooded,
        EMAILS_PER_ADDRESS_PER_DAY + 5,
        "other addresses are not held back"
    );

    // A staff account (made by an admin, never typed by a visitor) gets
    // every notification about its own work.
    user(store, "busy-agent@example.com", Role::Agent).await;
    for i in 0..EMAILS_PER_ADDRESS_PER_DAY + 5 {
        let email = careline::store::NewEmail {
            to: "busy-agent@example.com".into(),
            template: "agent_customer_wrote",
            payload: serde_json::json!({"conversation_id": i}),
        };
        store.enqueue_email(&email).await.unwrap();
    }
    let to_agent = store
        .outbox(1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.to_email == "busy-agent@example.com")
        .count() as i64;
    assert_eq!(to_agent, EMAILS_PER_ADDRESS_PER_DAY + 5);
}

conformance!(outbox_claims_give_each_email_to_one_worker, outbox_claims);
async fn outbox_claims(store: &Store) {
    use careline::store::NewEmail;
    for i in 0..40 {
        let email = NewEmail {
            to: format!("c{i}@example.com"),
            template: "verify_email",
            payload: serde_json::json!({"link": "x"}),
        };
        store.enqueue_email(&email).await.unwrap();
    }
    // Four workers claim at once, again and again, until nothing is due.
    let mut workers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due_emails(3, 60_000).await.expect("claim");
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort();
    let unique = all.len();
    all.dedup();
    assert_eq!(unique, all.len(), "no email was claimed twice");
    assert_eq!(all.len(), 40, "every email was claimed");
    // A lease that runs out makes an email claimable again (a dead worker).
    assert!(store.claim_due_emails(10, 60_000).await.unwrap().is_empty());
    store
        .email_retry(all[0], careline::store::now_ms() - 1, "try again")
        .await
        .unwrap();
    let again = store.claim_due_emails(10, 60_000).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![all[0]]);
    assert_eq!(again[0].attempts, 2);
}

conformance!(
    routing_tells_a_full_agent_from_a_conversation_no_longer_waiting,
    assignment_outcomes
);
/// Routing tries the next agent only when this one is full; once the
/// conversation is taken, every further try says so and routing stops.
async fn assignment_outcomes(store: &Store) {
    use careline::store::{Assignment, Wait};
    let ann = user(store, "ann@example.com", Role::Agent).await;
    let ben = user(store, "ben@example.com", Role::Agent).await;
    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "token-hash", "Visitor", "")
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for i in 0..6 {
        let c = store
            .create_conversation(site.id, visitor.id)
            .await
            .unwrap();
        assert!(
            store
                .escalate(c.id, &format!("Help {i}"), "Careline")
                .await
                .unwrap()
        );
        waiting.push(c.id);
    }
    // The default capacity is 5 live conversations.
    for (i, id) in waiting[..5].iter().enumerate() {
        let wait = if i % 2 == 0 { Wait::No } else { Wait::Yes };
        let outcome = store.assign_within_capacity(*id, &ann, wait).await.unwrap();
        assert_eq!(outcome, Assignment::Assigned, "conversation {i} to Ann");
    }
    for wait in [Wait::No, Wait::Yes] {
        let outcome = store
            .assign_within_capacity(waiting[5], &ann, wait)
            .await
            .unwrap();
        assert_eq!(outcome, Assignment::AgentFull, "Ann has no room left");
    }
    assert_eq!(
        store
            .assign_within_capacity(waiting[5], &ben, Wait::No)
            .await
            .unwrap(),
        Assignment::Assigned
    );
    let staff = store.conversation(waiting[5]).await.unwrap().unwrap();
    assert_eq!(
        staff.assignee_id,
        Some(ben.id),
        "the full agent kept nothing"
    );
    for wait in [Wait::No, Wait::Yes] {
        for (id, agent) in [(waiting[5], &ann), (waiting[0], &ben)] {
            let outcome = store.assign_within_capacity(id, agent, wait).await.unwrap();
            assert_eq!(outcome, Assignment::NoLongerWaiting, "{id} is taken");
        }
    }
    assert!(!store.claim(waiting[0], &ben).await.unwrap());
    let first = store.conversation(waiting[0]).await.unwrap().unwrap();
    assert_eq!(
        first.assignee_id,
        Some(ann.id),
        "a late try changes nothing"
    );
}

conformance!(
    a_reply_that_would_need_an_email_is_left_to_the_caller,
    email_condition
);
/// `only_if_customer_seen_after`: a write with it stores nothing when its
/// customer has an address and is away (the caller decides the email), and
/// stores as usual otherwise.
async fn email_condition(store: &Store) {
    let site = store.default_site().await.unwrap();
    let agent = user(store, "alan@example.com", Role::Agent).await;
    let grace = store
        .create_visitor(site.id, "grace-token", "Grace", "grace@example.com")
        .await
        .unwrap();
    let anonymous = store
        .create_visitor(site.id, "anonymous-token", "", "")
        .await
        .unwrap();
    let with_address = store.create_conversation(site.id, grace.id).await.unwrap();
    let without = store
        .create_conversation(site.id, anonymous.id)
        .await
        .unwrap();
    for c in [with_address.id, without.id] {
        assert!(store.escalate(c, "Help", "Careline").await.unwrap());
        assert!(store.claim(c, &agent).await.unwrap());
    }
    let reply = async |conversation: ConversationId, client_msg_id: &str| {
        let appended = store
            .append_message(
                conversation,
                NewChatMessage {
                    sender_kind: SenderKind::Agent,
                    sender_user_id: Some(agent.id),
                    sender_name: &agent.name,
                    body: "An answer",
                    private: false,
                    client_msg_id,
                    only_in: None,
                    only_assignee: Some(agent.id),
                    only_if_customer_seen_after: Some(now_ms() - 60_000),
                    email: None,
                    attachment: None,
                    options: &[],
                },
            )
            .await
            .unwrap();
        match appended {
            Appended::New(message, _) => Some(message.seq),
            Appended::Refused => None,
            _ => panic!("neither stored nor refused"),
        }
    };
    let last_seq = async |conversation: ConversationId| {
        store
            .conversation(conversation)
            .await
            .unwrap()
            .unwrap()
            .last_seq
    };

    // Both customers were seen just now.
    let first = reply(with_address.id, "r1").await.expect("stored");
    assert!(reply(without.id, "r1").await.is_some());
    // Both leave: only the one with an address needs an email.
    store.visitor_left(grace.id).await.unwrap();
    store.visitor_left(anonymous.id).await.unwrap();
    assert_eq!(reply(with_address.id, "r2").await, None);
    assert_eq!(
        last_seq(with_address.id).await,
        first,
        "nothing was written"
    );
    assert!(reply(without.id, "r2").await.is_some());
    // Back again.
    store.touch_visitors(&[grace.id]).await.unwrap();
    assert_eq!(reply(with_address.id, "r2").await, Some(first + 1));

    // The first response is stamped once, and only where there is a ticket.
    let ticket_of = async |conversation: ConversationId| {
        let c = store.conversation(conversation).await.unwrap().unwrap();
        store
            .ticket_by_number(c.ticket_number.unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    assert!(store.note_first_response(with_address.id).await.unwrap());
    let stamped = ticket_of(with_address.id).await.first_response_at;
    assert!(stamped.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(store.note_first_response(with_address.id).await.unwrap());
    assert_eq!(ticket_of(with_address.id).await.first_response_at, stamped);
    let no_ticket = store.create_conversation(site.id, grace.id).await.unwrap();
    assert!(!store.note_first_response(no_ticket.id).await.unwrap());
}

conformance!(
    an_upload_and_a_sweep_of_the_same_file_wait_for_each_other,
    upload_sweep_race
);
async fn upload_sweep_race(store: &Store) {
    use careline::model::Attachment;
    use careline::store::UploadRemoval;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "race-token", "Rae", "")
        .await
        .unwrap();
    let conversation = store
        .create_conversation(site.id, visitor.id)
        .await
        .unwrap();
    let sha = "ab".repeat(32);
    let upload = |id: &str| Attachment {
        id: id.into(),
        conversation_id: conversation.id,
        uploader_kind: SenderKind::Customer,
        uploader_user_id: None,
        name: "same.png".into(),
        content_type: "image/png".into(),
        size: 10,
        sha256: sha.clone(),
        message_id: None,
        private: false,
        created_at: now_ms(),
    };

    // The sweep holds the hash while it deletes the bytes: an upload of the
    // same file waits, so its bytes are stored after the delete, not before.
    store.insert_attachment(&upload("old")).await.unwrap();
    let (deleting_tx, deleting) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let sweep = tokio::spawn({
        let (store, sha) = (store.clone(), sha.clone());
        async move {
            store
                .remove_unsent_upload("old", &sha, async move {
                    deleting_tx.send(()).unwrap();
                    released.await.unwrap();
                    true
                })
                .await
        }
    });
    deleting.await.unwrap();
    let racing = tokio::spawn({
        let (store, new) = (store.clone(), upload("new"));
        async move { store.insert_attachment(&new).await }
    });
    // Not a speed check: without the lock the insert would be done long
    // before this; with it, it cannot finish until the sweep commits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !racing.is_finished(),
        "the upload did not wait for the sweep"
    );
    release.send(()).unwrap();
    assert_eq!(sweep.await.unwrap().unwrap(), UploadRemoval::Removed);
    racing.await.unwrap().unwrap();
    assert!(store.attachment("new").await.unwrap().is_some());

    // The other order: the sweep of an expired twin sees the newer row and
    // leaves the bytes alone, without trying to delete them.
    store.insert_attachment(&upload("twin")).await.unwrap();
    let tried = Arc::new(AtomicBool::new(false));
    let removal = store
        .remove_unsent_upload("twin", &sha, {
            let tried = tried.clone();
            async move {
                tried.store(true, Ordering::SeqCst);
                true
            }
        })
        .await
        .unwrap();
    assert_eq!(removal, UploadRemoval::BytesShared);
    assert!(!tried.load(Ordering::SeqCst));

    // Bytes that cannot be deleted. PostgreSQL, MariaDB/MySQL: nothing
    // changes, the next sweep retries. SQLite (the row goes first, so that a slow blob store
    // never holds the database's one write lock): the row is gone.
    let failed = store
        .remove_unsent_upload("new", &sha, async { false })
        .await
        .unwrap();
    assert_eq!(failed, UploadRemoval::BytesFailed);
    let kept = store.attachment("new").await.unwrap().is_some();
    assert_eq!(kept, store.backend() != careline::store::Backend::Sqlite);
    if kept {
        assert_eq!(
            store
                .remove_unsent_upload("new", &sha, async { true })
                .await
                .unwrap(),
            UploadRemoval::Removed
        );
    }
    // Removing it twice (two instances sweeping at once) is harmless.
    assert_eq!(
        store
            .remove_unsent_upload("new", &sha, async { true })
            .await
            .unwrap(),
        UploadRemoval::NotThere
    );
}

conformance!(
    an_emails_original_keeps_the_bytes_an_unsent_upload_shares,
    original_shares_bytes
);
async fn original_shares_bytes(store: &Store) {
    use careline::model::Attachment;
    use careline::store::{InboundOutcome, InboundRecord, UploadRemoval};

    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "eml-token", "Eml", "eml@example.com")
        .await
        .unwrap();
    let conversation = store
        .create_conversation(site.id, visitor.id)
        .await
        .unwrap();
    // Someone uploaded a saved email and never sent it; the same email was
    // also taken, and its original named (twice: a second delivery).
    let sha = "cd".repeat(32);
    store.name_email_original(&sha, 42).await.unwrap();
    store.name_email_original(&sha, 42).await.unwrap();
    store
        .insert_attachment(&Attachment {
            id: "saved-eml".into(),
            conversation_id: conversation.id,
            uploader_kind: SenderKind::Customer,
            uploader_user_id: None,
            name: "mail.eml".into(),
            content_type: "text/plain".into(),
            size: 42,
            sha256: sha.clone(),
            message_id: None,
            private: false,
            created_at: now_ms(),
        })
        .await
        .unwrap();
    // The sweep removes the upload's row and leaves the bytes alone.
    let removal = store
        .remove_unsent_upload("saved-eml", &sha, async {
            panic!("the bytes of an email's original must not be deleted")
        })
        .await
        .unwrap();
    assert_eq!(removal, UploadRemoval::BytesShared);

    // The email's record names its original and the message it became.
    let recorded = store
        .record_inbound_email(&InboundRecord {
            message_key: "<eml-1@example.com>",
            from_email: "eml@example.com",
            outcome: InboundOutcome::Appended,
            conversation_id: Some(conversation.id),
            detail: "1 file taken",
            raw: None,
            original_sha256: Some(&sha),
            message_seq: Some(3),
        })
        .await
        .unwrap();
    assert!(recorded);
    let emailed = store.emailed_messages(conversation.id).await.unwrap();
    assert_eq!(emailed.len(), 1);
    assert_eq!(emailed[0].0, 3);
    let original = store.inbound_original(emailed[0].1).await.unwrap().unwrap();
    assert_eq!(original.conversation_id, conversation.id);
    assert_eq!(original.sha256, sha);
    assert_eq!(original.size, 42);
    assert_eq!(original.from_email, "eml@example.com");
    assert!(
        store
            .inbound_original(emailed[0].1 + 1000)
            .await
            .unwrap()
            .is_none()
    );
    // An email that kept no original (ignored) is not one.
    store
        .record_inbound_email(&InboundRecord {
            message_key: "<eml-2@example.com>",
            from_email: "eml@example.com",
            outcome: InboundOutcome::Ignored,
            conversation_id: None,
            detail: "Auto-Submitted",
            raw: None,
            original_sha256: None,
            message_seq: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.emailed_messages(conversation.id).await.unwrap().len(),
        1
    );
}

conformance!(
    two_admins_demoting_each_other_at_once_leave_one_admin,
    mutual_demotion
);
async fn mutual_demotion(store: &Store) {
    use careline::store::RoleChange;
    // Two new admins, told apart from other pairs by `pair`.
    let admins = |pair: usize| async move {
        let mut both = Vec::new();
        for i in 0..2 {
            both.push(user(store, &format!("admin{i}-{pair}@example.com"), Role::Admin).await);
        }
        both
    };
    let admin_count = || async {
        let mut n = 0;
        for role_holder in store.staff().await.unwrap() {
            n += usize::from(role_holder.role == Role::Admin);
        }
        n
    };

    // One after the other: the second's author is no longer an admin.
    let pair = admins(0).await;
    let (ann, bob) = (&pair[0], &pair[1]);
    let before = admin_count().await;
    assert_eq!(
        store
            .change_role_as(ann.id, bob.id, Role::Agent)
            .await
            .unwrap(),
        RoleChange::Changed
    );
    assert_eq!(
        store
            .change_role_as(bob.id, ann.id, Role::Agent)
            .await
            .unwrap(),
        RoleChange::ActorNotAdmin
    );
    assert_eq!(admin_count().await, before - 1);

    // At the same moment, many times over: never both.
    for round in 1..=10 {
        let pair = admins(round).await;
        let (a, b) = (&pair[0], &pair[1]);
        let (one, other) = tokio::join!(
            store.change_role_as(a.id, b.id, Role::Agent),
            store.change_role_as(b.id, a.id, Role::Agent),
        );
        let mut outcomes = [one.unwrap(), other.unwrap()];
        outcomes.sort_by_key(|o| *o == RoleChange::Changed);
        assert_eq!(
            outcomes,
            [RoleChange::ActorNotAdmin, RoleChange::Changed],
            "round {round}"
        );
    }

    // A target that does not exist is not found; nothing changes.
    let ghost = careline::model::UserId(i64::MAX);
    assert!(matches!(
        store.change_role_as(ann.id, ghost, Role::Agent).await,
        Err(StoreError::NotFound)
    ));
}

conformance!(any_text_survives_a_round_trip, text_round_trip);
/// Every character a customer can type comes back as it went in: an emoji
/// (4 bytes in UTF-8), a right-to-left name, a CJK extension character
/// outside the Basic Multilingual Plane; and text that differs only in case
/// is different text (the collation folds nothing, on any backend).
async fn text_round_trip(store: &Store) {
    let chat = chat_on(store);
    let name = "דנה כהן 😀";
    let customer = store
        .create_user(
            &Email::parse("dana@example.com").unwrap(),
            name,
            "not-a-real-hash",
            Role::Customer,
        )
        .await
        .unwrap();
    let subject = "Ρούτερ 𠜎 не работает 🔥";
    let body = "مرحبا، the router 📡 is down\nsecond line 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
    let ticket = tickets::raise(&chat, &customer, subject, body, Priority::Normal)
        .await
        .unwrap();
    let seen = tickets::view(store, &customer, ticket.number)
        .await
        .unwrap();
    assert_eq!(seen.ticket.subject, subject);
    assert_eq!(seen.ticket.customer.name, name);
    assert_eq!(seen.messages[0].body, body);
    let (by_email, _) = store
        .user_with_hash(&Email::parse("dana@example.com").unwrap())
        .await
        .unwrap()
        .expect("the user is found");
    assert_eq!(by_email.name, name);

    store
        .save_settings(&[("probe", "lower".into()), ("Probe", "upper 🙂".into())])
        .await
        .unwrap();
    assert_eq!(
        store.setting("probe").await.unwrap().as_deref(),
        Some("lower")
    );
    assert_eq!(
        store.setting("Probe").await.unwrap().as_deref(),
        Some("upper 🙂")
    );
}

conformance!(
    parallel_writers_keep_both_sequences_gap_free,
    parallel_writers
);
/// Many writers into one conversation at once, as a busy chat across
/// instances has them: customer messages, private notes, retries of a
/// message already sent and sends refused by their condition. Every stored
/// message has its own `seq`, both sequences run 1, 2, 3… without a gap (a
/// retry or a refusal takes no number, on every backend and under its own
/// isolation level), and a retry returns the message it repeats.
async fn parallel_writers(store: &Store) {
    use careline::model::ConversationStatus;
    let site = store.default_site().await.unwrap();
    let visitor = store
        .create_visitor(site.id, "parallel-visitor", "Visitor", "")
        .await
        .unwrap();
    let conversation = store
        .create_conversation(site.id, visitor.id)
        .await
        .unwrap();
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let writers = 6;
    let each = 15;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..each {
                let id = format!("w{w}-m{i}");
                let private = w % 3 == 0;
                let by_agent = w % 2 == 0;
                let who = Writer {
                    store: &store,
                    conversation: conversation.id,
                    agent: by_agent.then_some(agent.id),
                    private: private && by_agent,
                };
                outcomes.push(("new", who.send(&id, None).await));
                // A retry of the message just sent, and a send whose
                // condition does not hold (the conversation is never closed).
                outcomes.push(("retry", who.send(&id, None).await));
                let refused = format!("{id}-refused");
                let closed_only: &[ConversationStatus] = &[ConversationStatus::Closed];
                outcomes.push(("refused", who.send(&refused, Some(closed_only)).await));
            }
            outcomes
        }));
    }
    let mut stored = 0;
    let mut returned = Vec::new();
    for task in tasks {
        for (kind, outcome) in task.await.unwrap() {
            match (kind, outcome) {
                ("new", Appended::New(message, _)) => {
                    stored += 1;
                    returned.push(message);
                }
                ("retry", Appended::Duplicate(m)) => assert_eq!(m.body, "parallel"),
                ("refused", Appended::Refused) => {}
                (kind, other) => panic!(
                    "{kind}: unexpected outcome (stored: {})",
                    matches!(other, Appended::New(..))
                ),
            }
        }
    }
    assert_eq!(stored, writers * each);
    let all = store.messages(conversation.id, true).await.unwrap();
    // What a write returns is the row as stored (MariaDB/MySQL build it
    // from what was written rather than read it back).
    for message in &returned {
        let row = all.iter().find(|m| m.id == message.id).expect("stored");
        assert_eq!(format!("{message:?}"), format!("{row:?}"));
    }
    let seqs: Vec<i64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=stored as i64).collect::<Vec<_>>());
    let public: Vec<i64> = all.iter().filter_map(|m| m.public_seq).collect();
    let public_count = all.iter().filter(|m| !m.private).count() as i64;
    assert_eq!(public, (1..=public_count).collect::<Vec<_>>());
    assert!(public_count < stored as i64, "some notes were private");
}

/// One of [`parallel_writers`]' writers: a customer, or an agent (whose
/// notes may be private).
struct Writer<'a> {
    store: &'a Store,
    conversation: ConversationId,
    agent: Option<careline::model::UserId>,
    private: bool,
}

impl Writer<'_> {
    async fn send(
        &self,
        client_msg_id: &str,
        only_in: Option<&[careline::model::ConversationStatus]>,
    ) -> Appended {
        self.store
            .append_message(
                self.conversation,
                NewChatMessage {
                    sender_kind: if self.agent.is_some() {
                        SenderKind::Agent
                    } else {
                        SenderKind::Customer
                    },
                    sender_user_id: self.agent,
                    sender_name: "writer",
                    body: "parallel",
                    private: self.private,
                    client_msg_id,
                    only_in,
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options: &[],
                },
            )
            .await
            .expect("the write succeeds")
    }
}

/// One holder at a time: the holder renews, others wait for it to expire
/// or be given up, and of many instances racing for a free lease exactly
/// one gets it.
async fn leases(store: &Store) {
    assert!(store.take_lease("mailbox", "a", 60_000).await.unwrap());
    assert!(!store.take_lease("mailbox", "b", 60_000).await.unwrap());
    assert!(
        store.take_lease("mailbox", "a", 60_000).await.unwrap(),
        "renewed"
    );
    // Another name is another lease.
    assert!(store.take_lease("other", "b", 60_000).await.unwrap());
    store.release_lease("mailbox", "b").await.unwrap();
    assert!(
        !store.take_lease("mailbox", "b", 60_000).await.unwrap(),
        "only its holder gives it up"
    );
    store.release_lease("mailbox", "a").await.unwrap();
    assert!(store.take_lease("mailbox", "b", 1).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // b died (its lease expired): eight instances race for it.
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .take_lease("mailbox", &format!("racer-{i}"), 60_000)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one instance holds the mailbox");
    assert!(!store.take_lease("mailbox", "b", 60_000).await.unwrap());
}
conformance!(leases_give_work_to_one_instance_at_a_time, leases);

/// Verified visitors: one per site and user id, several tokens, a merge
/// that moves only an anonymous visitor's conversations, revocation.
async fn verified_visitors(store: &Store) {
    let site = store.default_site().await.unwrap();
    let laptop = store
        .create_visitor(site.id, "hash-laptop", "", "")
        .await
        .unwrap();
    assert!(
        store
            .verify_visitor(laptop.id, "u-1", "Grace", "grace@example.com")
            .await
            .unwrap()
    );
    assert!(
        !store
            .verify_visitor(laptop.id, "u-2", "", "")
            .await
            .unwrap(),
        "verified once"
    );
    let other = store
        .create_visitor(site.id, "hash-other", "", "")
        .await
        .unwrap();
    assert!(
        !store.verify_visitor(other.id, "u-1", "", "").await.unwrap(),
        "one visitor per user id"
    );
    store
        .add_visitor_token(laptop.id, "hash-phone")
        .await
        .unwrap();
    let phone = store
        .visitor_by_token(site.id, "hash-phone")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phone.id, laptop.id);
    assert_eq!(phone.email, "grace@example.com");
    // The same address typed again keeps its proof; another one ends it.
    let verified = |store: &Store| {
        let store = store.clone();
        async move {
            let c = store.create_conversation(site.id, laptop.id).await.unwrap();
            store
                .conversation(c.id)
                .await
                .unwrap()
                .unwrap()
                .customer_verified
        }
    };
    assert!(verified(store).await);
    store
        .update_visitor_contact(laptop.id, "", "grace@example.com")
        .await
        .unwrap();
    assert!(verified(store).await);
    // An anonymous visitor's conversation moves; a verified one's never.
    let anonymous_chat = store.create_conversation(site.id, other.id).await.unwrap();
    let moved = store.merge_visitor(other.id, laptop.id).await.unwrap();
    assert_eq!(moved, vec![anonymous_chat.id]);
    assert_eq!(
        store
            .conversation(anonymous_chat.id)
            .await
            .unwrap()
            .unwrap()
            .visitor_id,
        laptop.id
    );
    assert!(
        store
            .visitor_by_token(site.id, "hash-other")
            .await
            .unwrap()
            .is_none()
    );
    let third = store
        .create_visitor(site.id, "hash-third", "", "")
        .await
        .unwrap();
    assert!(store.verify_visitor(third.id, "u-3", "", "").await.unwrap());
    let theirs = store.create_conversation(site.id, laptop.id).await.unwrap();
    assert!(
        store
            .merge_visitor(laptop.id, third.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .conversation(theirs.id)
            .await
            .unwrap()
            .unwrap()
            .visitor_id,
        laptop.id,
        "a verified customer's conversations never move"
    );
    assert!(
        store
            .visitor_by_token(site.id, "hash-laptop")
            .await
            .unwrap()
            .is_some(),
        "nor does its token end"
    );
    store
        .revoke_visitor_token(site.id, "hash-phone")
        .await
        .unwrap();
    store
        .revoke_visitor_token(site.id, "hash-laptop")
        .await
        .unwrap();
    assert!(
        store
            .visitor_by_token(site.id, "hash-phone")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .visitor_by_token(site.id, "hash-laptop")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .visitor_by_external_id(site.id, "u-1")
            .await
            .unwrap()
            .unwrap()
            .id,
        laptop.id
    );
}
conformance!(
    verified_visitors_hold_several_tokens_and_merge_only_the_anonymous,
    verified_visitors
);

/// A ticket an email opens opens once, however often (and however
/// simultaneously) the email is taken: a retry after the ticket was made
/// but before the email was recorded finds it.
async fn tickets_once_by_source(store: &Store) {
    let chat = chat_on(store);
    let ada = user(store, "ada@example.com", Role::Customer).await;
    let mut racers = Vec::new();
    for _ in 0..4 {
        let chat = chat.clone();
        let ada = ada.clone();
        racers.push(tokio::spawn(async move {
            tickets::raise_answering(
                &chat,
                &ada,
                ("Printer jams", "Every page"),
                Priority::Normal,
                Some("<ada-1@mail.example>"),
                Some("<ada-1@mail.example>"),
            )
            .await
            .unwrap()
            .number
        }));
    }
    let mut numbers = Vec::new();
    for racer in racers {
        numbers.push(racer.await.unwrap());
    }
    numbers.dedup();
    assert_eq!(numbers.len(), 1, "one ticket: {numbers:?}");
    let all = store
        .list_tickets(&TicketFilter {
            customer: Some(ada.id),
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    // Without a source, each call is a ticket of its own.
    for _ in 0..2 {
        tickets::raise(&chat, &ada, "Another", "Thing", Priority::Low)
            .await
            .unwrap();
    }
    let all = store
        .list_tickets(&TicketFilter {
            customer: Some(ada.id),
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}
conformance!(a_ticket_an_email_opens_opens_once, tickets_once_by_source);

/// Idempotency keys: the first claim runs, a second waits or replays,
/// each user's keys are their own, a released key runs again.
async fn idempotency_keys(store: &Store) {
    use careline::store::Claimed;
    let ada = user(store, "ada@example.com", Role::Agent).await;
    let bob = user(store, "bob@example.com", Role::Agent).await;
    let claim = |who: careline::model::UserId, key: &'static str| {
        let store = store.clone();
        async move {
            store
                .claim_idempotency_key(who, key, "POST /x")
                .await
                .unwrap()
        }
    };
    assert_eq!(claim(ada.id, "k").await, Claimed::Fresh);
    assert_eq!(claim(ada.id, "k").await, Claimed::Running);
    assert_eq!(
        claim(bob.id, "k").await,
        Claimed::Fresh,
        "keys are per user"
    );
    store
        .answer_idempotency_key(ada.id, "k", 201, "{\"ok\":true}")
        .await
        .unwrap();
    assert_eq!(
        claim(ada.id, "k").await,
        Claimed::Answered("POST /x".into(), 201, "{\"ok\":true}".into())
    );
    store.release_idempotency_key(bob.id, "k").await.unwrap();
    assert_eq!(claim(bob.id, "k").await, Claimed::Fresh);
}
conformance!(idempotency_keys_run_once_per_user_and_key, idempotency_keys);

/// A site's settings, for the checks below.
fn site_settings(name: &str) -> careline::store::SiteSettings {
    careline::store::SiteSettings {
        name: name.into(),
        allowed_origins: vec!["https://help.example".into()],
        greeting: "Hi".into(),
        color: "#123456".into(),
        require_email: true,
        position: careline::model::WidgetPosition::BottomLeft,
    }
}

/// Names compared as `domain::sites` compares them.
fn same_name(a: &str, b: &str) -> bool {
    careline::domain::sites::same_name(a, b)
}

async fn add_site(store: &Store, name: &str) -> careline::model::SiteId {
    match store
        .save_site(None, &site_settings(name), same_name)
        .await
        .unwrap()
    {
        careline::store::SiteSaved::Saved(id) => id,
        other => panic!("{name}: {other:?}"),
    }
}

conformance!(sites_are_added_changed_and_removed, sites_lifecycle);
async fn sites_lifecycle(store: &Store) {
    use careline::model::{SiteId, WidgetPosition};
    use careline::store::{SiteRemoved, SiteSaved};
    let first = store.default_site().await.unwrap();
    // Alone, the default site stays.
    assert_eq!(
        store.remove_site(first.id).await.unwrap(),
        SiteRemoved::LastActive
    );
    let help = add_site(store, "Help").await;
    let stored = store.site(help).await.unwrap().unwrap();
    assert_eq!(stored.position, WidgetPosition::BottomLeft);
    assert!(stored.require_email && !stored.is_archived());
    assert_eq!(stored.allowed_origins, ["https://help.example"]);
    assert!(stored.key.len() >= 16 && stored.key != first.key);
    assert_eq!(
        store.site_by_key(&stored.key).await.unwrap().unwrap().id,
        help
    );
    // One name, one site, whatever its case; a site keeps its own.
    for (id, name) in [(None, "HELP"), (Some(first.id), "help")] {
        assert_eq!(
            store
                .save_site(id, &site_settings(name), same_name)
                .await
                .unwrap(),
            SiteSaved::NameTaken,
            "{name}"
        );
    }
    assert_eq!(
        store
            .save_site(Some(help), &site_settings("Help"), same_name)
            .await
            .unwrap(),
        SiteSaved::Saved(help)
    );
    assert!(matches!(
        store
            .save_site(Some(SiteId(999_999)), &site_settings("Nope"), same_name)
            .await,
        Err(StoreError::NotFound)
    ));

    // Unused: deleted, with its visitors. Used: archived, history kept.
    let spare = add_site(store, "Spare").await;
    store
        .create_visitor(spare, "spare-visitor", "", "")
        .await
        .unwrap();
    assert_eq!(
        store.remove_site(spare).await.unwrap(),
        SiteRemoved::Deleted
    );
    assert!(store.site(spare).await.unwrap().is_none());
    assert!(
        store
            .visitor_by_token(spare, "spare-visitor")
            .await
            .unwrap()
            .is_none()
    );
    let visitor = store
        .create_visitor(first.id, "first-visitor", "Dana", "")
        .await
        .unwrap();
    let kept = store
        .create_conversation(first.id, visitor.id)
        .await
        .unwrap();
    assert_eq!(
        store.remove_site(first.id).await.unwrap(),
        SiteRemoved::Archived
    );
    let archived = store.site(first.id).await.unwrap().unwrap();
    assert!(archived.is_archived());
    let read = store.conversation(kept.id).await.unwrap().unwrap();
    assert_eq!(read.site_name, archived.name);
    assert_eq!(
        store.site_conversation_counts().await.unwrap(),
        [(first.id, 1)]
    );
    // The default site is the oldest one still taking chats.
    assert_eq!(store.default_site().await.unwrap().id, help);
    assert_eq!(
        store
            .save_site(Some(first.id), &site_settings("Shop"), same_name)
            .await
            .unwrap(),
        SiteSaved::Archived
    );
    assert_eq!(
        store.remove_site(first.id).await.unwrap(),
        SiteRemoved::AlreadyArchived
    );
    assert_eq!(
        store.remove_site(help).await.unwrap(),
        SiteRemoved::LastActive
    );
    // An archived site's name stays its own: its history shows it.
    assert_eq!(
        store
            .save_site(None, &site_settings(&archived.name), same_name)
            .await
            .unwrap(),
        SiteSaved::NameTaken
    );
    assert!(matches!(
        store.remove_site(spare).await,
        Err(StoreError::NotFound)
    ));
}

conformance!(
    two_removals_at_once_leave_a_site_that_takes_chats,
    concurrent_removals
);
/// Two admins removing the last two sites at the same moment: the sites'
/// rows are locked first, so one removal waits for the other and is refused.
async fn concurrent_removals(store: &Store) {
    use careline::store::SiteRemoved;
    let mut standing = store.default_site().await.unwrap().id;
    for round in 0..10 {
        let other = add_site(store, &format!("Round {round}")).await;
        let (one, two) = tokio::join!(store.remove_site(standing), store.remove_site(other));
        let outcomes = [one.unwrap(), two.unwrap()];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == SiteRemoved::LastActive)
                .count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert!(outcomes.contains(&SiteRemoved::Deleted), "{outcomes:?}");
        let active: Vec<_> = store
            .sites()
            .await
            .unwrap()
            .into_iter()
            .filter(|s| !s.is_archived())
            .collect();
        assert_eq!(active.len(), 1, "round {round}");
        standing = active[0].id;
    }
}

conformance!(two_sites_added_at_once_never_share_a_name, concurrent_names);
async fn concurrent_names(store: &Store) {
    use careline::store::SiteSaved;
    for round in 0..10 {
        let (one, two) = (
            site_settings(&format!("Brand {round}")),
            site_settings(&format!("BRAND {round}")),
        );
        let (one, two) = tokio::join!(
            store.save_site(None, &one, same_name),
            store.save_site(None, &two, same_name),
        );
        let outcomes = [one.unwrap(), two.unwrap()];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == SiteSaved::NameTaken)
                .count(),
            1,
            "round {round}: {outcomes:?}"
        );
    }
}

conformance!(faq_entries_answer_on_their_sites, faq_sites);
async fn faq_sites(store: &Store) {
    use careline::store::{FaqSites, SiteRemoved};
    let shop = store.default_site().await.unwrap().id;
    let help = add_site(store, "Help").await;
    let shared = store.faq_entries().await.unwrap().len();
    assert!(shared > 0, "the seeded entries answer on every site");
    store
        .save_faq_entry(None, "Iceland?", "Yes", &FaqSites::Only(vec![shop]))
        .await
        .unwrap();
    store
        .save_faq_entry(None, "Welsh?", "Ydy", &FaqSites::Only(vec![help, shop]))
        .await
        .unwrap();
    let entry = |question: &'static str| async move {
        store
            .faq_entries()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.questions == question)
            .unwrap()
    };
    let questions = |site| async move {
        let mut found: Vec<String> = store
            .faq_entries_for_site(site)
            .await
            .unwrap()
            .into_iter()
            .skip(shared)
            .map(|e| e.questions)
            .collect();
        found.sort();
        found
    };
    assert_eq!(questions(shop).await, ["Iceland?", "Welsh?"]);
    assert_eq!(questions(help).await, ["Welsh?"]);
    assert_eq!(
        store.faq_entries_for_site(help).await.unwrap().len(),
        shared + 1
    );
    assert_eq!(
        entry("Welsh?").await.sites,
        FaqSites::Only(vec![shop, help])
    );

    // All sites, then only the help centre.
    let iceland = entry("Iceland?").await.id;
    store
        .save_faq_entry(Some(iceland), "Iceland?", "Yes", &FaqSites::All)
        .await
        .unwrap();
    assert_eq!(questions(help).await, ["Iceland?", "Welsh?"]);
    assert_eq!(entry("Iceland?").await.sites, FaqSites::All);
    store
        .save_faq_entry(
            Some(iceland),
            "Iceland?",
            "Yes",
            &FaqSites::Only(vec![help]),
        )
        .await
        .unwrap();
    assert_eq!(questions(shop).await, ["Welsh?"]);
    assert!(matches!(
        store
            .save_faq_entry(Some(999_999), "Q", "A", &FaqSites::All)
            .await,
        Err(StoreError::NotFound)
    ));

    // A deleted site's choices go with it: an entry left without a site
    // answers nowhere (it does not become an entry for all).
    assert_eq!(store.remove_site(help).await.unwrap(), SiteRemoved::Deleted);
    assert_eq!(entry("Iceland?").await.sites, FaqSites::Only(vec![]));
    assert_eq!(entry("Welsh?").await.sites, FaqSites::Only(vec![shop]));
    assert_eq!(questions(shop).await, ["Welsh?"]);
    store.delete_faq_entry(iceland).await.unwrap();
    assert_eq!(store.faq_entries().await.unwrap().len(), shared + 1);
}

conformance!(tickets_queues_and_reports_tell_sites_apart, split_by_site);
async fn split_by_site(store: &Store) {
    let chat = chat_on(store);
    let shop = store.default_site().await.unwrap();
    let help = add_site(store, "Help").await;
    let grace = user(store, "grace@example.com", Role::Customer).await;
    // A portal ticket goes to the default site; one on the help centre; and
    // a help centre chat the bot answered alone.
    let printer = tickets::raise(&chat, &grace, "Printer", "It jams", Priority::Normal)
        .await
        .unwrap();
    let invoice = store
        .create_ticket(
            help,
            &grace,
            ("Invoice", "Wrong total"),
            Priority::High,
            (None, None),
        )
        .await
        .unwrap();
    let visitor = store
        .create_visitor(help, "help-visitor", "Eve", "")
        .await
        .unwrap();
    store.create_conversation(help, visitor.id).await.unwrap();

    assert_eq!(
        (printer.site_id, printer.site_name.as_str()),
        (shop.id, shop.name.as_str())
    );
    assert_eq!(
        (invoice.site_id, invoice.site_name.as_str()),
        (help, "Help")
    );
    let listed = |site| async move {
        store
            .list_tickets(&TicketFilter {
                site,
                limit: 50,
                ..TicketFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.number, t.site_name))
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(Some(help)).await, [(invoice.number, "Help".into())]);
    assert_eq!(
        listed(Some(shop.id)).await,
        [(printer.number, shop.name.clone())]
    );
    assert_eq!(listed(None).await.len(), 2);
    let queue = store.queue().await.unwrap();
    let sites: Vec<_> = queue
        .iter()
        .map(|q| (q.site_id, q.site_name.as_str()))
        .collect();
    assert_eq!(sites, [(shop.id, shop.name.as_str()), (help, "Help")]);

    let rows = store.report_rows(0).await.unwrap();
    let counts = |site| rows.by_site.get(&site).copied().unwrap_or_default();
    assert_eq!(
        (
            counts(shop.id).conversations,
            counts(shop.id).without_ticket,
            counts(shop.id).opened
        ),
        (1, 0, 1)
    );
    assert_eq!(
        (
            counts(help).conversations,
            counts(help).without_ticket,
            counts(help).opened
        ),
        (2, 1, 1)
    );
    assert_eq!(
        (rows.conversations, rows.without_ticket, rows.opened),
        (3, 1, 2)
    );
}

conformance!(
    contacts_are_found_corrected_and_keep_their_attributes,
    contact_details
);
async fn contact_details(store: &Store) {
    let site = store.default_site().await.unwrap();
    let typed = store
        .create_visitor(site.id, "token-grace", "Grace", "grace@exmaple.com")
        .await
        .unwrap();
    let _silent = store
        .create_visitor(site.id, "token-anon", "", "")
        .await
        .unwrap();
    let filter = careline::store::ContactFilter {
        query: Some("EXMAPLE".into()),
        limit: 10,
        ..Default::default()
    };
    let found = store.contacts(&filter).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].attributes, "{}", "none set yet");
    let everyone = careline::store::ContactFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store.contacts(&everyone).await.unwrap().len(),
        1,
        "a visitor who said nothing is nobody's contact"
    );
    store
        .update_contact(
            typed.id,
            None,
            Some("grace@example.com"),
            Some(r#"{"plan":"pro"}"#),
        )
        .await
        .unwrap();
    let after = store.contact(typed.id).await.unwrap().unwrap();
    assert_eq!(
        (after.name.as_str(), after.email.as_str()),
        ("Grace", "grace@example.com")
    );
    assert_eq!(after.attributes, r#"{"plan":"pro"}"#);
    assert!(!after.email_verified);
    // Nothing asked, nothing changed.
    store
        .update_contact(typed.id, None, None, None)
        .await
        .unwrap();
    assert_eq!(store.contact(typed.id).await.unwrap().unwrap(), after);
}

conformance!(
    old_webhook_events_and_delivered_deliveries_are_removed_and_waiting_ones_kept,
    webhook_pruning
);
async fn webhook_pruning(store: &Store) {
    let settings = careline::store::EndpointSettings {
        url: "https://hooks.example.com/careline",
        events: &["conversation.started"],
        include_private: false,
    };
    let endpoint = store
        .create_webhook_endpoint(&settings, "sealed")
        .await
        .unwrap();
    store
        .queue_webhook_ping(endpoint, |e| format!("{{\"id\":{}}}", e.id))
        .await
        .unwrap();
    let claimed = store.claim_webhook_deliveries(10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let delivered = careline::store::Attempt {
        status: Some(200),
        latency_ms: 3,
        excerpt: "ok".into(),
        error: String::new(),
        delivered: true,
    };
    let failure = careline::store::AfterFailure {
        next_attempt_at: now_ms(),
        disable_after: 15,
        disabled_reason: String::new(),
        email: careline::store::NewEmail {
            to: String::new(),
            template: "webhook_disabled",
            payload: serde_json::json!({}),
        },
    };
    store
        .record_webhook_attempt(&claimed[0], &delivered, failure)
        .await
        .unwrap();
    // A second one that has not gone out yet.
    store
        .queue_webhook_ping(endpoint, |e| format!("{{\"id\":{}}}", e.id))
        .await
        .unwrap();
    assert_eq!(store.webhook_log(endpoint, 10).await.unwrap().len(), 1);

    // Nothing is old yet.
    assert_eq!(store.prune_webhooks(0, 0).await.unwrap(), (0, 0));
    let later = now_ms() + 1_000;
    assert_eq!(
        store.prune_webhooks(later, later).await.unwrap(),
        (2, 1),
        "both events (fanned out) and the delivered delivery"
    );
    assert_eq!(
        store.webhook_pending(endpoint).await.unwrap(),
        1,
        "the waiting delivery stays"
    );
    assert!(store.webhook_log(endpoint, 10).await.unwrap().is_empty());
}

conformance!(
    labels_are_unique_ignoring_case_and_filter_the_list,
    labels_filter
);
async fn labels_filter(store: &Store) {
    use careline::model::LabelColour;
    let chat = chat_on(store);
    let grace = user(store, "grace@example.com", Role::Customer).await;
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let printer = tickets::raise(&chat, &grace, "Printer", "It jams", Priority::Normal)
        .await
        .unwrap();
    let invoice = tickets::raise(&chat, &grace, "Invoice", "Wrong", Priority::Normal)
        .await
        .unwrap();
    let vip = store
        .add_label("VIP", "vip", LabelColour::Purple)
        .await
        .unwrap();
    assert!(matches!(
        store.add_label("vip", "vip", LabelColour::Red).await,
        Err(StoreError::Duplicate("name"))
    ));
    let bug = store
        .add_label("Bug", "bug", LabelColour::Orange)
        .await
        .unwrap();
    assert!(matches!(
        store
            .save_label(bug, ("Vip", "vip"), LabelColour::Red)
            .await,
        Err(StoreError::Duplicate("name"))
    ));
    // Saving the same values is no "not found" (MariaDB counts no change).
    store
        .save_label(bug, ("Bug", "bug"), LabelColour::Orange)
        .await
        .unwrap();
    let vip_label = store.label(vip).await.unwrap().unwrap();
    let bug_label = store.label(bug).await.unwrap().unwrap();
    assert!(
        store
            .set_ticket_label(&printer, &vip_label, true, &agent)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_ticket_label(&printer, &vip_label, true, &agent)
            .await
            .unwrap(),
        "already on"
    );
    store
        .set_ticket_label(&printer, &bug_label, true, &agent)
        .await
        .unwrap();
    store
        .set_ticket_label(&invoice, &bug_label, true, &agent)
        .await
        .unwrap();

    let listed = |label| async move {
        store
            .list_tickets(&TicketFilter {
                label,
                limit: 50,
                ..TicketFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|t| {
                let names: Vec<String> = t.labels.into_iter().map(|l| l.name).collect();
                (t.number, names)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(Some(vip)).await,
        [(printer.number, vec!["Bug".to_string(), "VIP".to_string()])]
    );
    assert_eq!(
        listed(Some(bug)).await,
        [
            (invoice.number, vec!["Bug".to_string()]),
            (printer.number, vec!["Bug".to_string(), "VIP".to_string()]),
        ]
    );
    // The label filter with the others, and a customer's list ignoring it.
    let open_vip = store
        .list_tickets(&TicketFilter {
            label: Some(vip),
            status: Some(TicketStatus::Resolved),
            limit: 50,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert!(open_vip.is_empty());
    let theirs = tickets::list(
        store,
        &grace,
        TicketFilter {
            label: Some(vip),
            limit: 50,
            ..TicketFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(theirs.len(), 2);

    // Each change is a private timeline entry.
    let events = store.ticket_events(printer.id, true).await.unwrap();
    let labelled: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::LabelAdded)
        .collect();
    assert_eq!(labelled.len(), 2);
    assert!(labelled.iter().all(|e| e.private));
    assert!(
        store
            .set_ticket_label(&printer, &vip_label, false, &agent)
            .await
            .unwrap()
    );
    let events = store.ticket_events(printer.id, false).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.kind, EventKind::LabelAdded | EventKind::LabelRemoved)),
        "customers never see them"
    );

    // Deleting a label takes it off every ticket.
    store.delete_label(bug).await.unwrap();
    assert!(listed(Some(bug)).await.is_empty());
    let printer_now = store
        .ticket_by_number(printer.number)
        .await
        .unwrap()
        .unwrap();
    assert!(printer_now.labels.is_empty());
    assert!(matches!(
        store
            .set_ticket_label(&invoice, &bug_label, true, &agent)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_label(bug).await,
        Err(StoreError::NotFound)
    ));
}

conformance!(
    a_contact_merge_moves_history_notes_and_identity_once,
    contact_merge
);
/// Merging contacts: conversations, tickets (each with a timeline entry),
/// notes and attributes move in one transaction; the merged id leads to the
/// survivor; provably different people are refused.
async fn contact_merge(store: &Store) {
    use careline::auth::hash_token;
    use careline::domain::DomainError;
    use careline::domain::contact_merge;
    use careline::domain::contacts::{self, ContactChange};
    let chat = chat_on(store);
    let agent = user(store, "agent@example.com", Role::Agent).await;
    let site = store.default_site().await.unwrap();
    let grace = store
        .create_visitor(
            site.id,
            &hash_token("grace-token"),
            "Grace",
            "grace@example.com",
        )
        .await
        .unwrap();
    let duplicate = store
        .create_visitor(
            site.id,
            &hash_token("dup-token"),
            "",
            "g.hopper@example.com",
        )
        .await
        .unwrap();
    assert!(
        store
            .verify_visitor(duplicate.id, "u-7", "G. Hopper", "g.hopper@example.com")
            .await
            .unwrap()
    );
    let mut moved_tickets = Vec::new();
    for visitor in [grace.id, duplicate.id, duplicate.id] {
        let c = store.create_conversation(site.id, visitor).await.unwrap();
        assert!(store.escalate(c.id, "Help", "Careline").await.unwrap());
    }
    for ticket in store.contact_tickets(duplicate.id, 10).await.unwrap() {
        moved_tickets.push(ticket.id);
    }
    assert_eq!(moved_tickets.len(), 2);
    contacts::add_note(
        store,
        &agent,
        duplicate.id,
        "Called twice about the same invoice",
    )
    .await
    .unwrap();
    for (id, attributes) in [
        (grace.id, serde_json::json!({"plan": "pro"})),
        (
            duplicate.id,
            serde_json::json!({"plan": "free", "seats": 3}),
        ),
    ] {
        let change = ContactChange {
            attributes: Some(attributes.as_object().unwrap().clone()),
            ..ContactChange::default()
        };
        contacts::update(store, &agent, id, change).await.unwrap();
    }

    let merged = contact_merge::merge(&chat, &agent, grace.id, duplicate.id)
        .await
        .expect("one person from two browsers merges");
    assert_eq!(merged.moved.conversations.len(), 2);
    assert_eq!(merged.moved.tickets.len(), 2);
    assert_eq!(merged.moved.notes, 1);
    let survivor = merged.contact;
    assert_eq!(survivor.name, "Grace", "the first's details win");
    assert_eq!(
        survivor.email, "g.hopper@example.com",
        "the signed email comes along"
    );
    assert!(survivor.email_verified);
    assert_eq!(survivor.external_id.as_deref(), Some("u-7"));
    let attributes: serde_json::Value = serde_json::from_str(&survivor.attributes).unwrap();
    assert_eq!(attributes, serde_json::json!({"plan": "pro", "seats": 3}));
    let profile = contacts::profile(store, &agent, grace.id).await.unwrap();
    assert_eq!(profile.conversations.len(), 3);
    assert_eq!(profile.tickets.len(), 3);
    assert_eq!(profile.notes.len(), 1);
    assert_eq!(profile.notes[0].author, "agent");
    for ticket in &moved_tickets {
        let timeline = store.ticket_events(*ticket, true).await.unwrap();
        let entry = timeline.last().unwrap();
        assert_eq!(entry.kind, EventKind::ContactMerged);
        assert_eq!(entry.actor, "agent");
        assert!(entry.private, "staff's bookkeeping, not the customer's");
        assert!(
            entry
                .describe()
                .starts_with("Contact merged: G. Hopper <g.hopper@example.com>"),
            "{}",
            entry.describe()
        );
        let public = store.ticket_events(*ticket, false).await.unwrap();
        assert!(public.iter().all(|e| e.kind != EventKind::ContactMerged));
    }
    // The merged contact is gone, its id leads to the survivor, its
    // widget token is nobody's and the signed id finds the survivor.
    assert!(matches!(
        contacts::find(store, &agent, duplicate.id).await,
        Err(DomainError::NotFound)
    ));
    assert_eq!(
        contacts::successor(store, &agent, duplicate.id)
            .await
            .unwrap(),
        Some(grace.id)
    );
    assert!(
        store
            .visitor_by_token(site.id, &hash_token("dup-token"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .visitor_by_external_id(site.id, "u-7")
            .await
            .unwrap()
            .map(|v| v.id),
        Some(grace.id)
    );
    let again = contact_merge::merge(&chat, &agent, grace.id, duplicate.id).await;
    assert!(
        matches!(again, Err(DomainError::Invalid { field: "from", .. })),
        "{again:?}"
    );

    // Refused: itself, and two people the host site tells apart.
    let itself = contact_merge::merge(&chat, &agent, grace.id, grace.id).await;
    assert!(
        matches!(&itself, Err(DomainError::Invalid { field: "from", message }) if message.contains("itself")),
        "{itself:?}"
    );
    let other = store
        .create_visitor(site.id, &hash_token("other-token"), "Other", "")
        .await
        .unwrap();
    assert!(store.verify_visitor(other.id, "u-8", "", "").await.unwrap());
    let signed = contact_merge::merge(&chat, &agent, grace.id, other.id).await;
    assert!(
        matches!(&signed, Err(DomainError::Invalid { field: "from", message }) if message.contains("u-7 and u-8")),
        "{signed:?}"
    );
    assert_eq!(
        store.contact_tickets(grace.id, 10).await.unwrap().len(),
        3,
        "a refused merge moves nothing"
    );
}
