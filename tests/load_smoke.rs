//! A few seconds of the load generator's `chat` scenario against the real
//! server, on every storage backend: nothing acked may be lost or doubled.
//! (The full runs are in `load-tests/`; figures in docs/benchmarks.md.)

mod support;

use std::time::Duration;

use careline_load::Target;
use careline_load::chat::{self, ChatPlan};
use support::TestApp;
use support::databases::backends;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chat_load_loses_and_duplicates_nothing() {
    for db in backends("a_short_chat_load_loses_and_duplicates_nothing").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut agent_cookies = Vec::new();
        for i in 1..=2 {
            let agent = app
                .agent(
                    &mut admin,
                    &format!("Agent {i}"),
                    &format!("agent{i}@example.com"),
                )
                .await;
            agent_cookies.push(agent.cookie_header());
        }
        let target = Target {
            addr: app.addr,
            origin: app.base.clone(),
            site_key: app.store.default_site().await.unwrap().key,
        };
        let plan = ChatPlan {
            customers: 12,
            agent_cookies,
            rate: 1.0,
            duration: Duration::from_secs(4),
            wave: 6,
            wave_every: Duration::from_millis(200),
            grace: Duration::from_secs(10),
            spread: 4,
            server_pid: None,
        };
        let report = chat::run(target, plan).await.expect("the scenario runs");
        println!("{db:?}:\n{report}");
        assert_eq!(report.failed_clients, 0, "{:?}", report.first_failure);
        assert_eq!(report.conversations, 12, "every customer reached an agent");
        assert!(report.acked > 50, "messages flowed both ways: {report}");
        assert_eq!(report.lost, 0, "acked messages were lost: {report}");
        assert_eq!(
            report.duplicated, 0,
            "messages were delivered twice: {report}"
        );
        assert_eq!(
            report.delivered, report.acked,
            "every acked message arrived"
        );
        assert_eq!(report.delivery.count(), report.delivered);
    }
}
