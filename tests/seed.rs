//! `careline seed`: the seeded data set must look, to the rest of Careline,
//! exactly like tickets people made: listed, filtered and rendered by the
//! normal pages, numbered consistently for staff and customers, and
//! continued correctly by the next real reply or ticket.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use careline::domain::{accounts, password};
use careline::model::EventKind;
use careline::model::{ConversationStatus, Role, SenderKind, TicketStatus};
use careline::store::{Store, TicketFilter};
use support::TestApp;
use support::databases::backends;

const CUSTOMER_PASSWORD: &str = "customer password";

/// The text as maud writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Asserts that `parts` appear in `page` in this order.
fn in_order(page: &str, parts: &[String]) {
    let mut from = 0;
    for part in parts {
        match page[from..].find(part.as_str()) {
            Some(at) => from += at + part.len(),
            None => panic!("`{part}` is missing or out of order in the page"),
        }
    }
}

fn mirrored(status: TicketStatus, assigned: bool) -> ConversationStatus {
    match status {
        TicketStatus::Resolved => ConversationStatus::Resolved,
        TicketStatus::Closed => ConversationStatus::Closed,
        _ if assigned => ConversationStatus::Live,
        _ => ConversationStatus::Waiting,
    }
}

async fn all_tickets(store: &Store) -> Vec<careline::model::Ticket> {
    store
        .list_tickets(&TicketFilter {
            limit: 200,
            ..TicketFilter::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn seeded_tickets_list_render_and_continue_like_real_ones() {
    for db in backends("seeded tickets").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut agent_ids = BTreeSet::new();
        for k in 1..=3 {
            let agent = accounts::create_with_role(
                &app.store,
                &format!("Seed agent {k}"),
                &format!("seed-agent-{k}@example.com"),
                "agent password 1",
                Role::Agent,
            )
            .await
            .unwrap();
            agent_ids.insert(agent.id);
        }
        let hash = password::hash(CUSTOMER_PASSWORD).await.unwrap();
        let seeded = app.store.seed_tickets(5, 50, 10, 90, &hash).await.unwrap();
        assert_eq!(seeded.tickets, 50, "{db:?}");
        assert_eq!(seeded.messages, 500, "{db:?}");
        assert_eq!(seeded.customers, 5);
        assert_eq!((seeded.first_number, seeded.last_number), (1001, 1050));
        assert!(seeded.events >= 50, "at least an `opened` entry each");

        // Every ticket is listed, most recently updated first.
        let tickets = all_tickets(&app.store).await;
        let numbers: BTreeSet<i64> = tickets.iter().map(|t| t.number.0).collect();
        assert_eq!(numbers, (1001..=1050).collect(), "{db:?}");
        assert!(
            tickets
                .windows(2)
                .all(|w| w[0].updated_at >= w[1].updated_at)
        );

        let mut statuses = BTreeSet::new();
        let mut priorities = BTreeSet::new();
        let (mut notes, mut bot_messages, mut total) = (0, 0, 0);
        for t in &tickets {
            statuses.insert(t.status.as_str());
            priorities.insert(t.priority.as_str());
            let conversation = app
                .store
                .conversation(t.conversation_id)
                .await
                .unwrap()
                .unwrap();
            let messages = app.store.messages(t.conversation_id, true).await.unwrap();
            total += messages.len();
            // Staff numbering: every message, 1..=last_seq without a gap.
            let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, (1..=conversation.last_seq).collect::<Vec<_>>());
            // Customer numbering: public messages only, 1..=last_public_seq.
            let public: Vec<i64> = messages.iter().filter_map(|m| m.public_seq).collect();
            assert_eq!(
                public,
                (1..=conversation.last_public_seq).collect::<Vec<_>>()
            );
            assert!(messages.iter().all(|m| m.private == m.public_seq.is_none()));
            assert_eq!(
                app.store
                    .messages(t.conversation_id, false)
                    .await
                    .unwrap()
                    .len() as i64,
                conversation.last_public_seq
            );
            assert!(
                messages
                    .windows(2)
                    .all(|w| w[0].created_at <= w[1].created_at)
            );
            assert_eq!(messages[0].sender_kind, SenderKind::Customer);
            notes += messages.iter().filter(|m| m.private).count();
            bot_messages += messages
                .iter()
                .filter(|m| m.sender_kind == SenderKind::Bot)
                .count();

            // The conversation mirrors the ticket; assignees are the agents.
            let assignee = t.assignee.as_ref().and_then(|a| a.id);
            assert_eq!(conversation.assignee_id, assignee);
            assert_eq!(conversation.ticket_number, Some(t.number));
            assert_eq!(conversation.status, mirrored(t.status, assignee.is_some()));
            if let Some(id) = assignee {
                assert!(agent_ids.contains(&id), "assigned to a seeded agent");
            }
            assert!(t.updated_at >= t.created_at && t.updated_at <= careline::store::now_ms());
            assert_eq!(
                t.resolved_at.is_some(),
                matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed)
            );
            let first_reply = messages
                .iter()
                .find(|m| m.sender_kind == SenderKind::Agent && !m.private)
                .map(|m| m.created_at);
            assert_eq!(t.first_response_at, first_reply);

            // The timeline starts with the opening, in time order; customers
            // do not see the notes' entries.
            let timeline = app.store.ticket_events(t.id, true).await.unwrap();
            assert_eq!(timeline[0].kind, EventKind::Opened);
            assert!(timeline.windows(2).all(|w| w[0].at <= w[1].at));
            let public_timeline = app.store.ticket_events(t.id, false).await.unwrap();
            assert_eq!(
                timeline.len() - public_timeline.len(),
                timeline
                    .iter()
                    .filter(|e| e.kind == EventKind::Note)
                    .count()
            );
        }
        assert_eq!(total, 500);
        assert!(statuses.len() >= 3, "varied statuses: {statuses:?}");
        assert!(priorities.len() >= 3, "varied priorities: {priorities:?}");
        assert!(notes > 0 && bot_messages > 0, "notes and chat transcripts");

        // The console lists them, filters them and shows a thread in order.
        let list = admin.get("/console").await.expect_status(200);
        assert!(list.contains(&format!("#{}", tickets[0].number)));
        let closed = tickets
            .iter()
            .find(|t| t.status == TicketStatus::Closed)
            .expect("some closed ticket");
        let filtered = admin.get("/console?status=closed").await.expect_status(200);
        assert!(filtered.contains(&format!("#{}", closed.number)));
        assert!(
            !filtered.contains("badge badge-open\""),
            "{}",
            filtered.body
        );

        // A portal customer's ticket with a private note in its thread.
        let mut by_notes: Vec<_> = Vec::new();
        for t in tickets.iter().filter(|t| t.customer.id.is_some()) {
            let messages = app.store.messages(t.conversation_id, true).await.unwrap();
            by_notes.push((messages.iter().filter(|m| m.private).count(), t, messages));
        }
        by_notes.sort_by_key(|(n, t, _)| (std::cmp::Reverse(*n), t.number));
        let (_, ticket, messages) = by_notes.first().expect("a portal ticket");
        let page = admin
            .get(&format!("/console/tickets/{}", ticket.number))
            .await
            .expect_status(200);
        in_order(
            &page.body,
            &messages
                .iter()
                .map(|m| escaped(&m.body))
                .collect::<Vec<_>>(),
        );
        assert!(page.contains("Ticket opened"));

        // The customer logs in with the seeded password, finds the ticket
        // on the dashboard and reads the thread without the notes.
        let mut customer = app.browser();
        customer
            .login(&ticket.customer.email, CUSTOMER_PASSWORD)
            .await;
        let dashboard = customer.get("/dashboard").await.expect_status(200);
        for t in tickets
            .iter()
            .filter(|t| t.customer.email == ticket.customer.email)
        {
            assert!(dashboard.contains(&format!("#{}", t.number)));
        }
        let page = customer
            .get(&format!("/tickets/{}", ticket.number))
            .await
            .expect_status(200);
        in_order(
            &page.body,
            &messages
                .iter()
                .filter(|m| !m.private)
                .map(|m| escaped(&m.body))
                .collect::<Vec<_>>(),
        );
        for note in messages.iter().filter(|m| m.private) {
            assert!(!page.contains(&escaped(&note.body)), "a note leaked");
        }

        // A real reply continues both numberings; a real ticket the counter.
        let before = app
            .store
            .conversation(ticket.conversation_id)
            .await
            .unwrap()
            .unwrap();
        admin
            .get(&format!("/console/tickets/{}", ticket.number))
            .await
            .expect_status(200);
        // As on any ticket an agent owns, the admin takes it over before
        // answering the customer (src/domain/ownership.rs).
        let admin_id = app
            .store
            .staff()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.role == careline::model::Role::Admin)
            .unwrap()
            .id;
        admin
            .submit(
                &format!("/console/tickets/{}/update", ticket.number),
                &[("assignee", &admin_id.to_string())],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{}", ticket.number));
        admin
            .get(&format!("/console/tickets/{}", ticket.number))
            .await
            .expect_status(200);
        admin
            .submit(
                &format!("/console/tickets/{}/reply", ticket.number),
                &[("body", "A reply after the seed")],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{}", ticket.number));
        let after = app
            .store
            .messages(ticket.conversation_id, true)
            .await
            .unwrap();
        let reply = after.last().unwrap();
        assert_eq!(reply.body, "A reply after the seed");
        assert_eq!(reply.seq, before.last_seq + 1);
        assert_eq!(reply.public_seq, Some(before.last_public_seq + 1));

        customer.get("/tickets/new").await.expect_status(200);
        let created = customer
            .submit(
                "/tickets",
                &[
                    ("subject", "After the seed"),
                    ("description", "Numbered after the seeded ones?"),
                ],
            )
            .await;
        assert_eq!(created.location.as_deref(), Some("/tickets/1051"), "{db:?}");
    }
}

fn careline(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careline"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CARELINE_DATA_DIR", data_dir)
        .env("CARELINE_CONFIG", data_dir.join("careline.toml"))
        .env("CARELINE_LOG", "warn")
        .current_dir(data_dir);
    cmd
}

/// Runs `careline seed ARGS` with the password on standard input; returns
/// its `name=value` output.
fn seed(data_dir: &std::path::Path, args: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut child = careline(data_dir)
        .arg("seed")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CUSTOMER_PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn the_seed_command_adds_agents_customers_and_tickets_after_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let first = seed(
        dir.path(),
        &[
            "--agents",
            "2",
            "--tickets",
            "30",
            "--messages-per-ticket",
            "4",
        ],
    );
    assert_eq!(first["agents"], "2");
    assert_eq!(first["customers"], "3", "one customer per 10 tickets");
    assert_eq!(first["first_customer"], "load-customer-1@load.test");
    assert_eq!(first["tickets"], "30");
    assert_eq!(first["numbers"], "1001-1030");
    assert_eq!(first["messages"], "120");
    assert!(!first["site_key"].is_empty());

    // A second seed continues the numbers, the customers and the ids.
    let second = seed(
        dir.path(),
        &[
            "--agents",
            "2",
            "--tickets",
            "11",
            "--customers",
            "2",
            "--messages-per-ticket",
            "3",
        ],
    );
    assert_eq!(second["first_customer"], "load-customer-4@load.test");
    assert_eq!(second["numbers"], "1031-1041");
    assert_eq!(second["messages"], "33");
    assert_eq!(second["site_key"], first["site_key"]);

    let url = format!("sqlite://{}/careline.db", dir.path().display());
    let store = Store::open(&url, 1).await.unwrap();
    let tickets = all_tickets(&store).await;
    assert_eq!(tickets.len(), 41);
    let staff: BTreeSet<_> = store.staff().await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(staff.len(), 2, "agents are not created twice");
    assert!(
        tickets
            .iter()
            .filter_map(|t| t.assignee.as_ref().and_then(|a| a.id))
            .all(|id| staff.contains(&id))
    );
    store.close().await;
}
