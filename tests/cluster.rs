//! Several instances behind nginx on PostgreSQL and Redis, as in
//! docker-compose.yml, with local processes: conversations across
//! instances, instances killed and stopped mid-stream, Redis restarted
//! mid-stream, and claims raced from two instances. Every message must
//! reach the other side exactly once, in seq order.

mod support;

use std::time::Duration;

use serde_json::json;
use support::Browser;
use support::Database;
use support::cluster::Cluster;
use support::resilient::{Identity, Resilient};
use support::ws::SHOP_ORIGIN;

async fn allow_shop(cluster: &Cluster) -> String {
    let site = cluster.store.default_site().await.unwrap();
    let settings = careline::store::SiteSettings {
        name: site.name.clone(),
        allowed_origins: vec![SHOP_ORIGIN.to_string()],
        greeting: site.greeting.clone(),
        color: site.color.clone(),
        require_email: false,
        position: careline::model::WidgetPosition::BottomRight,
    };
    cluster.store.update_site(site.id, &settings).await.unwrap();
    site.key
}

async fn visitor(cluster: &Cluster, site: &str, label: &'static str) -> Resilient {
    let session: serde_json::Value = careline::http_client(std::time::Duration::from_secs(30))
        .post(format!("{}/api/widget/v1/session", cluster.base))
        .header("Origin", SHOP_ORIGIN)
        .json(&json!({"site_key": site}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let identity = Identity::Visitor {
        site: site.to_string(),
        token: session["visitor_token"].as_str().unwrap().to_string(),
        origin: SHOP_ORIGIN.to_string(),
    };
    let mut client = Resilient::new(
        label,
        &format!("127.0.0.1:{}", cluster.nginx_port),
        identity,
        "",
    );
    client.connect().await;
    client
}

async fn agent(cluster: &Cluster, email: &str, label: &'static str) -> Resilient {
    let mut browser = Browser::new(&cluster.base);
    browser.login(email, "agent password 1").await;
    let cookie = browser.cookie_header();
    let identity = Identity::Agent {
        cookie,
        origin: cluster.base.clone(),
    };
    let mut client = Resilient::new(
        label,
        &format!("127.0.0.1:{}", cluster.nginx_port),
        identity,
        "",
    );
    client.connect().await;
    client
}

/// A visitor in a live conversation with `alan`, each on its own instance.
async fn live_pair(cluster: &Cluster) -> (Resilient, Resilient) {
    let site = allow_shop(cluster).await;
    let mut customer = visitor(cluster, &site, "customer").await;
    customer
        .send_frame(
            json!({"type": "start", "client_msg_id": "start", "body": "hello, talk to a person"}),
        )
        .await;
    let waiting = customer
        .wait_for("waiting", |f| {
            f["type"] == "conversation" && f["status"] == "waiting"
        })
        .await;
    let id = waiting["id"].as_str().unwrap().to_string();
    customer.conversation = id.clone();

    // least_conn sends a new socket to a less busy instance; retry until the
    // agent is on another instance than the customer.
    let mut alan = agent(cluster, "alan@example.com", "agent").await;
    for _ in 0..5 {
        if alan.instance != customer.instance {
            break;
        }
        alan = agent(cluster, "alan@example.com", "agent").await;
    }
    assert_ne!(
        alan.instance, customer.instance,
        "customer and agent on different instances"
    );
    alan.send_frame(json!({"type": "claim", "conversation_id": id}))
        .await;
    alan.wait_for("claim", |f| {
        f["type"] == "conversation" && f["status"] == "live"
    })
    .await;
    alan.conversation = id.clone();
    alan.send_frame(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
        .await;
    alan.wait_for("resumed", |f| f["type"] == "resumed").await;
    (customer, alan)
}

fn setup_people(cluster: &Cluster) {
    cluster.create_user(
        "admin@example.com",
        "admin",
        "Ada Admin",
        "agent password 1",
    );
    cluster.create_user("alan@example.com", "agent", "Alan", "agent password 1");
    cluster.create_user("bea@example.com", "agent", "Bea", "agent password 1");
}

/// Whose instance a disruption hits.
#[derive(Clone, Copy, Debug)]
enum Whose {
    Customer,
    Agent,
}

/// What goes wrong, and before which round of the stream.
enum Disruption {
    /// SIGKILL the instance that holds this side's socket right now.
    Kill(Whose),
    /// SIGTERM it (graceful: sockets closed with 1001).
    Terminate(Whose),
    StopRedis,
    StartRedis,
}

/// Both sides send `count` messages while the disruptions happen; then every
/// message must be held once, in order, by the other side.
async fn stream_through(cluster: &mut Cluster, count: usize, plan: &[(usize, Disruption)]) {
    let (mut customer, mut alan) = live_pair(cluster).await;
    for i in 0..count {
        for (_, disruption) in plan.iter().filter(|(at, _)| *at == i) {
            let instance_of = |whose: &Whose| match whose {
                Whose::Customer => customer.instance.clone(),
                Whose::Agent => alan.instance.clone(),
            };
            match disruption {
                Disruption::Kill(whose) => {
                    let name = instance_of(whose).expect("the socket's instance is known");
                    eprintln!("SIGKILL {name}, the {whose:?}'s instance (round {i})");
                    cluster.kill(&name);
                }
                Disruption::Terminate(whose) => {
                    let name = instance_of(whose).expect("the socket's instance is known");
                    eprintln!("SIGTERM {name}, the {whose:?}'s instance (round {i})");
                    cluster.terminate(&name).await;
                }
                Disruption::StopRedis => {
                    eprintln!("Redis stopped (round {i})");
                    cluster.redis.stop();
                }
                Disruption::StartRedis => {
                    eprintln!("Redis restarted (round {i})");
                    cluster.redis.restart().await;
                }
            }
        }
        customer
            .send(format!("v{i}"), format!("from customer {i}"))
            .await;
        alan.send(format!("a{i}"), format!("from agent {i}")).await;
        customer.pump(Duration::from_millis(15)).await;
        alan.pump(Duration::from_millis(15)).await;
    }
    let expected_from_agent: Vec<String> = (0..count).map(|i| format!("from agent {i}")).collect();
    let expected_from_customer: Vec<String> =
        (0..count).map(|i| format!("from customer {i}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let customer_done =
            customer.bodies_from("agent") == expected_from_agent && customer.unacked.is_empty();
        let agent_done = alan
            .bodies_from("customer")
            .into_iter()
            .filter(|b| b.starts_with("from customer"))
            .collect::<Vec<_>>()
            == expected_from_customer
            && alan.unacked.is_empty();
        if customer_done && agent_done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered in 60 s: customer holds {:?} of the agent's (unacked {}), agent holds {} of the customer's (unacked {})",
            customer.bodies_from("agent").len(),
            customer.unacked.len(),
            alan.bodies_from("customer").len(),
            alan.unacked.len()
        );
        customer.pump(Duration::from_millis(100)).await;
        alan.pump(Duration::from_millis(100)).await;
    }
    assert!(
        customer.gap_free() && alan.gap_free(),
        "each side's seqs run without a gap"
    );
    assert_eq!(customer.acked, count);
    assert_eq!(alan.acked, count);
    eprintln!(
        "delivered exactly once, in order: customer got {} of the agent's messages ({} duplicates dropped, {} reconnects, {} resume_required); \
         agent got {} of the customer's ({} duplicates dropped, {} reconnects, {} resume_required); {} instances still running",
        expected_from_agent.len(),
        customer.duplicates_dropped,
        customer.reconnects,
        customer.resumes_required,
        expected_from_customer.len(),
        alan.duplicates_dropped,
        alan.reconnects,
        alan.resumes_required,
        cluster.running()
    );
}

#[tokio::test]
async fn a_conversation_flows_across_instances_and_the_queue_updates_everywhere() {
    let Some(cluster) = Cluster::start("cluster flow").await else {
        return;
    };
    conversation_flows(cluster).await;
}

#[tokio::test]
async fn on_mariadb_a_conversation_flows_across_instances() {
    let Some(cluster) = Cluster::start_on("cluster flow", Database::Mysql).await else {
        return;
    };
    conversation_flows(cluster).await;
}

async fn conversation_flows(cluster: Cluster) {
    setup_people(&cluster);
    let site = allow_shop(&cluster).await;

    // Metrics: each instance shows them to this machine, nginx to no one.
    let http = careline::http_client(std::time::Duration::from_secs(30));
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{}/metrics", cluster.base)).await, 404);
    for instance in &cluster.instances {
        let url = format!("http://127.0.0.1:{}/metrics", instance.port);
        assert_eq!(status(url).await, 200, "{}", instance.name);
    }

    // Two agents watch the queue from two instances.
    let mut alan = agent(&cluster, "alan@example.com", "alan").await;
    let mut bea = agent(&cluster, "bea@example.com", "bea").await;
    for _ in 0..5 {
        if bea.instance != alan.instance {
            break;
        }
        bea = agent(&cluster, "bea@example.com", "bea").await;
    }
    assert_ne!(alan.instance, bea.instance);
    for a in [&mut alan, &mut bea] {
        a.send_frame(json!({"type": "watch_queue"})).await;
        a.wait_for("queue", |f| f["type"] == "queue").await;
    }

    let mut customer = visitor(&cluster, &site, "customer").await;
    customer
        .send_frame(json!({"type": "start", "client_msg_id": "s", "body": "talk to a person"}))
        .await;
    let waiting = customer
        .wait_for("waiting", |f| {
            f["type"] == "conversation" && f["status"] == "waiting"
        })
        .await;
    let id = waiting["id"].as_str().unwrap().to_string();
    customer.conversation = id.clone();
    let has_it = |f: &serde_json::Value| {
        f["type"] == "queue" && f["waiting"].as_array().is_some_and(|w| !w.is_empty())
    };
    alan.wait_for("the queue with the new chat", has_it).await;
    bea.wait_for("the queue with the new chat", has_it).await;

    alan.send_frame(json!({"type": "claim", "conversation_id": id}))
        .await;
    alan.wait_for("claimed", |f| {
        f["type"] == "conversation" && f["status"] == "live"
    })
    .await;
    let emptied = |f: &serde_json::Value| {
        f["type"] == "queue" && f["waiting"].as_array().is_some_and(|w| w.is_empty())
    };
    bea.wait_for("the queue emptied on another instance", emptied)
        .await;
    alan.conversation = id.clone();
    alan.send_frame(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
        .await;

    customer
        .send("c1".into(), "Hello across instances".into())
        .await;
    customer
        .send_frame(json!({"type": "typing", "conversation_id": id}))
        .await;
    alan.wait_for("typing", |f| f["type"] == "typing").await;
    alan.send("a1".into(), "Hello back".into()).await;
    while !customer
        .bodies_from("agent")
        .contains(&"Hello back".to_string())
        || !alan
            .bodies_from("customer")
            .contains(&"Hello across instances".to_string())
    {
        customer.pump(Duration::from_millis(50)).await;
        alan.pump(Duration::from_millis(50)).await;
    }
    eprintln!(
        "customer on {:?}, agents on {:?} and {:?}",
        customer.instance, alan.instance, bea.instance
    );
}

#[tokio::test]
async fn killing_and_stopping_instances_mid_stream_loses_nothing() {
    let Some(cluster) = Cluster::start("cluster failover").await else {
        return;
    };
    instances_fail_mid_stream(cluster).await;
}

#[tokio::test]
async fn on_mariadb_killing_and_stopping_instances_mid_stream_loses_nothing() {
    let Some(cluster) = Cluster::start_on("cluster failover", Database::Mysql).await else {
        return;
    };
    instances_fail_mid_stream(cluster).await;
}

async fn instances_fail_mid_stream(mut cluster: Cluster) {
    setup_people(&cluster);
    let plan = [
        (20, Disruption::Kill(Whose::Customer)),
        (50, Disruption::Terminate(Whose::Agent)),
    ];
    stream_through(&mut cluster, 80, &plan).await;
    assert_eq!(
        cluster.running(),
        1,
        "the two instances the clients were on are gone"
    );
}

#[tokio::test]
async fn a_redis_restart_mid_stream_loses_nothing() {
    let Some(mut cluster) = Cluster::start("cluster redis restart").await else {
        return;
    };
    setup_people(&cluster);
    let plan = [(15, Disruption::StopRedis), (30, Disruption::StartRedis)];
    stream_through(&mut cluster, 60, &plan).await;
}

#[tokio::test]
async fn two_agents_on_two_instances_claim_at_once_and_exactly_one_owns_it() {
    let Some(cluster) = Cluster::start("cluster claim race").await else {
        return;
    };
    claim_race(cluster).await;
}

#[tokio::test]
async fn on_mariadb_two_agents_claim_at_once_and_exactly_one_owns_it() {
    let Some(cluster) = Cluster::start_on("cluster claim race", Database::Mysql).await else {
        return;
    };
    claim_race(cluster).await;
}

async fn claim_race(cluster: Cluster) {
    setup_people(&cluster);
    let site = allow_shop(&cluster).await;
    let mut alan = agent(&cluster, "alan@example.com", "alan").await;
    let mut bea = agent(&cluster, "bea@example.com", "bea").await;
    for _ in 0..5 {
        if bea.instance != alan.instance {
            break;
        }
        bea = agent(&cluster, "bea@example.com", "bea").await;
    }
    assert_ne!(alan.instance, bea.instance);
    for round in 0..5 {
        let mut customer = visitor(&cluster, &site, "customer").await;
        customer
            .send_frame(json!({"type": "start", "client_msg_id": "s", "body": "talk to a person"}))
            .await;
        let waiting = customer
            .wait_for("waiting", |f| {
                f["type"] == "conversation" && f["status"] == "waiting"
            })
            .await;
        let id = waiting["id"].as_str().unwrap().to_string();
        let claim = |r: String| json!({"type": "claim", "conversation_id": id, "ref": r});
        let (ra, rb) = (format!("a{round}"), format!("b{round}"));
        tokio::join!(
            alan.send_frame(claim(ra.clone())),
            bea.send_frame(claim(rb.clone()))
        );
        let mine = |name: &'static str, r: String| {
            let id = id.clone();
            move |f: &serde_json::Value| {
                f["ref"] == r.as_str()
                    || (f["type"] == "conversation"
                        && f["id"] == id.as_str()
                        && f["assignee"]["name"] == name)
            }
        };
        let a = alan.wait_for("alan's answer", mine("Alan", ra)).await;
        let b = bea.wait_for("bea's answer", mine("Bea", rb)).await;
        let winners = [&a, &b]
            .iter()
            .filter(|f| f["type"] == "conversation")
            .count();
        let losers = [&a, &b].iter().filter(|f| f["code"] == "conflict").count();
        assert_eq!((winners, losers), (1, 1), "round {round}: {a} / {b}");
    }
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_console_on_another_at_once() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let Some(cluster) = Cluster::start("cluster session end").await else {
        return;
    };
    setup_people(&cluster);
    let (first, second) = (&cluster.instances[0], &cluster.instances[1]);
    // Logged in, and later logged out, on the second instance directly.
    let mut browser = Browser::new(&format!("http://127.0.0.1:{}", second.port));
    browser.login("alan@example.com", "agent password 1").await;
    // The console on the first one; its origin is Careline's public URL.
    let mut request = format!("ws://127.0.0.1:{}/ws", first.port)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("Origin", cluster.base.parse().unwrap());
    headers.insert("Cookie", browser.cookie_header().parse().unwrap());
    let (mut console, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    console
        .send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .unwrap();
    let welcome = console.next().await.unwrap().unwrap();
    assert!(
        welcome.to_text().unwrap().contains("\"welcome\""),
        "{welcome}"
    );

    browser.get("/console").await;
    browser.submit("/logout", &[]).await.expect_redirect("/");

    // Nothing is sent on the console: the close comes over Redis by itself.
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = console.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the console closes within 5 s, long before the 30 s heartbeat");
    assert_eq!(close, Some(4401));
}
