//! A chat message caught in a real deadlock is written all the same: the
//! store runs its transaction again when the database ends it to break one
//! (PostgreSQL and MariaDB/MySQL; SQLite has one writer and no row locks).
//!
//! The deadlock is the one the message path can meet: a message's
//! foreign-key check on its sender waits for a transaction holding that
//! agent's row, which in turn waits for the conversation row the message
//! already updated. The other transaction is made the heavier one (it has
//! changed more rows), so that InnoDB ends the message's transaction, not
//! it, and the retry is what the test sees.

mod support;

use std::time::Duration;

use careline::model::{ConversationId, Email, Role, SenderKind, UserId};
use careline::store::{Appended, NewChatMessage, Store};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use support::TestDb;
use support::databases::servers;

async fn agent_message(store: Store, conversation: ConversationId, agent: UserId) -> Appended {
    store
        .append_message(
            conversation,
            NewChatMessage {
                sender_kind: SenderKind::Agent,
                sender_user_id: Some(agent),
                sender_name: "Alan",
                body: "caught in a deadlock",
                private: false,
                client_msg_id: "deadlocked",
                only_in: None,
                only_assignee: None,
                only_if_customer_seen_after: None,
                email: None,
                attachment: None,
                options: &[],
            },
        )
        .await
        .expect("the message is written after the deadlock")
}

#[tokio::test]
async fn a_message_ended_by_a_deadlock_is_written_by_its_retry() {
    sqlx::any::install_default_drivers();
    for db in servers("deadlock retry").await {
        let dir = tempfile::tempdir().unwrap();
        let test_db = TestDb::create(db, dir.path()).await;
        let store = Store::open(&test_db.url, 4).await.unwrap();
        let agent = store
            .create_user(
                &Email::parse("alan@example.com").unwrap(),
                "Alan",
                "not-a-real-hash",
                Role::Agent,
            )
            .await
            .unwrap();
        let site = store.default_site().await.unwrap();
        let visitor = store
            .create_visitor(site.id, "deadlock-visitor", "Visitor", "")
            .await
            .unwrap();
        let conversation = store
            .create_conversation(site.id, visitor.id)
            .await
            .unwrap();
        // Rows for the other transaction to change, so that it is the heavier.
        let mut others = Vec::new();
        for _ in 0..20 {
            others.push(
                store
                    .create_conversation(site.id, visitor.id)
                    .await
                    .unwrap()
                    .id,
            );
        }

        let mut holder = AnyConnection::connect(&test_db.url.replace("mariadb://", "mysql://"))
            .await
            .unwrap();
        holder.execute("BEGIN").await.unwrap();
        for id in &others {
            holder
                .execute(AssertSqlSafe(format!(
                    "UPDATE conversations SET updated_at = updated_at + 1 WHERE id = {id}"
                )))
                .await
                .unwrap();
        }
        // 1. It holds the agent's row.
        holder
            .execute(AssertSqlSafe(format!(
                "SELECT id FROM users WHERE id = {} FOR UPDATE",
                agent.id
            )))
            .await
            .unwrap();
        // 2. The message takes the conversation's row, then waits on the
        //    agent's row for its foreign-key check.
        let writing = tokio::spawn(agent_message(store.clone(), conversation.id, agent.id));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !writing.is_finished(),
            "{db:?}: the message waits on the agent's row"
        );
        // 3. It now wants the conversation's row: a deadlock. Whichever the
        //    database ends, the message must be written.
        let held = holder
            .execute(AssertSqlSafe(format!(
                "UPDATE conversations SET updated_at = updated_at + 1 WHERE id = {}",
                conversation.id
            )))
            .await;
        match held {
            Ok(_) => holder.execute("COMMIT").await.map(|_| ()).unwrap(),
            Err(e) => {
                eprintln!("{db:?}: the other transaction was ended: {e}");
                let _ = holder.execute("ROLLBACK").await;
            }
        }
        let appended = tokio::time::timeout(Duration::from_secs(30), writing)
            .await
            .expect("the message is not stuck")
            .unwrap();
        let Appended::New(message, _) = appended else {
            panic!("{db:?}: the message was not written as new");
        };
        assert_eq!(message.seq, 1, "{db:?}: the ended attempt took no seq");
        let stored = store.messages(conversation.id, true).await.unwrap();
        assert_eq!(stored.len(), 1, "{db:?}");
        eprintln!("deadlock retry passed on {db:?}");
    }
}
