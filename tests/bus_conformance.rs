//! The bus conformance suite: every adapter (the in-process bus now, Redis
//! later) must pass the same checks. `connect` gives a new instance's
//! connection to one shared backend, as several Careline processes have.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use careline::bus::{Bus, BusEvent, Envelope, LocalBroker, RedisBus, Topic};
use careline::model::{ConversationId, UserId};
use support::redis::{PrivateRedis, redis_available};
use tokio::sync::mpsc;

type Connect = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Bus>>>>>;

async fn next_message(events: &mut mpsc::Receiver<BusEvent>) -> Option<(Topic, String)> {
    match next_envelope(events).await {
        Some((topic, envelope)) => Some((topic, envelope.frame.to_string())),
        None => None,
    }
}

async fn next_envelope(events: &mut mpsc::Receiver<BusEvent>) -> Option<(Topic, Envelope)> {
    match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        Ok(Some(BusEvent::Message { topic, envelope })) => Some((topic, envelope)),
        _ => None,
    }
}

fn text(frame: impl Into<String>) -> Envelope {
    Envelope::frame(Arc::from(frame.into()))
}

async fn nothing_more(events: &mut mpsc::Receiver<BusEvent>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), events.recv())
        .await
        .is_err()
}

fn public(id: i64) -> Topic {
    Topic::Public(ConversationId(id))
}

fn staff(id: i64) -> Topic {
    Topic::Staff(ConversationId(id))
}

/// A topic of this test run only: the Redis server may be shared by tests
/// running at the same time. `kind` makes the topic of that kind.
fn topic(kind: fn(i64) -> Topic) -> Topic {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        & 0x3fff_ffff_ffff;
    kind(run * 1000 + NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn delivers_in_order_to_subscribers(connect: &Connect) {
    let bus = connect().await;
    let t = topic(public);
    let mut events = bus.events().expect("events are taken once");
    assert!(bus.events().is_none(), "a second taker gets nothing");
    bus.subscribe(t).await.unwrap();
    settle().await;
    for i in 0..50 {
        bus.publish(t, text(format!("m{i}"))).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(next_message(&mut events).await, Some((t, format!("m{i}"))));
    }
    assert!(nothing_more(&mut events).await);
}

async fn only_subscribed_topics_arrive(connect: &Connect) {
    let bus = connect().await;
    let (here, elsewhere) = (topic(public), topic(public));
    let mut events = bus.events().unwrap();
    bus.subscribe(here).await.unwrap();
    bus.subscribe(here).await.unwrap(); // idempotent: still one delivery
    settle().await;
    bus.publish(elsewhere, text("elsewhere")).await.unwrap();
    bus.publish(here, text("here")).await.unwrap();
    assert_eq!(next_message(&mut events).await, Some((here, "here".into())));
    assert!(
        nothing_more(&mut events).await,
        "one delivery, and nothing from the other topic"
    );
    bus.unsubscribe(here).await.unwrap();
    settle().await;
    bus.publish(here, text("after")).await.unwrap();
    assert!(nothing_more(&mut events).await, "nothing after unsubscribe");
    bus.publish(topic(public), text("x")).await.unwrap();
}

async fn every_subscribed_instance_gets_each_message(connect: &Connect) {
    let a = connect().await;
    let b = connect().await;
    let c = connect().await;
    let (queue, other) = (topic(staff), topic(staff));
    let (mut ea, mut eb, mut ec) = (
        a.events().unwrap(),
        b.events().unwrap(),
        c.events().unwrap(),
    );
    a.subscribe(queue).await.unwrap();
    b.subscribe(queue).await.unwrap();
    c.subscribe(other).await.unwrap();
    settle().await;
    c.publish(queue, text("from c")).await.unwrap();
    assert_eq!(next_message(&mut ea).await, Some((queue, "from c".into())));
    assert_eq!(next_message(&mut eb).await, Some((queue, "from c".into())));
    assert!(
        nothing_more(&mut ec).await,
        "c did not subscribe to that topic"
    );
    drop(b);
    a.publish(queue, text("after b left")).await.unwrap();
    assert_eq!(
        next_message(&mut ea).await,
        Some((queue, "after b left".into()))
    );
    assert!(a.is_connected());
}

/// An assignment tells the receiving instance which conversation its
/// agent's consoles now follow, beside the frame they are sent (on Redis
/// the frame alone travels, as between releases, and the conversation is
/// read back at the edge).
async fn an_assignment_arrives_with_its_conversation(connect: &Connect) {
    let (a, b) = (connect().await, connect().await);
    let agent = topic(|id| Topic::Agent(UserId(id)));
    let mut events = a.events().unwrap();
    a.subscribe(agent).await.unwrap();
    settle().await;
    let frame: Arc<str> = Arc::from(r#"{"type":"conversation","id":"77"}"#);
    b.publish(
        agent,
        Envelope::assignment(frame.clone(), ConversationId(77)),
    )
    .await
    .unwrap();
    let other: Arc<str> = Arc::from(r#"{"type":"notice","id":"78"}"#);
    b.publish(agent, Envelope::frame(other.clone()))
        .await
        .unwrap();
    assert_eq!(
        next_envelope(&mut events).await,
        Some((agent, Envelope::assignment(frame, ConversationId(77))))
    );
    assert_eq!(
        next_envelope(&mut events).await,
        Some((agent, Envelope::frame(other))),
        "a frame that is not an assignment names nothing to follow"
    );
}

async fn a_lagging_instance_is_told_to_resync(connect: &Connect) {
    let fast = connect().await;
    let slow = connect().await;
    let mut slow_events = slow.events().unwrap();
    slow.subscribe(public(7)).await.unwrap();
    // The slow instance reads nothing while far more than any queue holds is published.
    for i in 0..10_000 {
        fast.publish(public(7), text(format!("{i}"))).await.unwrap();
    }
    let mut received = 0;
    let mut told = false;
    let drain = |told: &mut bool, received: &mut usize, event: BusEvent| match event {
        BusEvent::Message { .. } => *received += 1,
        BusEvent::Resync { topics } => {
            *told = true;
            assert!(topics.contains(&public(7)));
        }
    };
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), slow_events.recv()).await
    {
        drain(&mut told, &mut received, event);
    }
    // Once there is room again, the next publish brings the owed resync first.
    fast.publish(public(7), text("after the storm"))
        .await
        .unwrap();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), slow_events.recv()).await
    {
        drain(&mut told, &mut received, event);
    }
    assert!(
        received < 10_000,
        "some messages were dropped ({received} arrived)"
    );
    assert!(told, "the instance that lost messages was told to resync");
}

fn local() -> Connect {
    let broker = LocalBroker::new();
    Box::new(move || {
        let bus = Arc::new(broker.connect()) as Arc<dyn Bus>;
        Box::pin(async move { bus })
    })
}

fn redis_at(url: String) -> Connect {
    Box::new(move || {
        let url = url.clone();
        Box::pin(async move {
            Arc::new(RedisBus::connect(&url).await.expect("Redis bus connects")) as Arc<dyn Bus>
        })
    })
}

/// Redis delivers asynchronously: give a fresh subscription a moment to be
/// registered before the publisher on another connection fires.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn local_bus_delivers_in_order_to_subscribers() {
    delivers_in_order_to_subscribers(&local()).await;
}

#[tokio::test]
async fn local_bus_delivers_only_subscribed_topics() {
    only_subscribed_topics_arrive(&local()).await;
}

#[tokio::test]
async fn local_bus_reaches_every_subscribed_instance() {
    every_subscribed_instance_gets_each_message(&local()).await;
}

#[tokio::test]
async fn local_bus_carries_an_assignment_with_its_conversation() {
    an_assignment_arrives_with_its_conversation(&local()).await;
}

#[tokio::test]
async fn redis_bus_carries_an_assignment_with_its_conversation() {
    if let Some(url) = redis_available("redis bus assignment").await {
        an_assignment_arrives_with_its_conversation(&redis_at(url)).await;
    }
}

#[tokio::test]
async fn local_bus_tells_a_lagging_instance_to_resync() {
    a_lagging_instance_is_told_to_resync(&local()).await;
}

#[tokio::test]
async fn redis_bus_delivers_in_order_to_subscribers() {
    if let Some(url) = redis_available("redis bus order").await {
        delivers_in_order_to_subscribers(&redis_at(url)).await;
    }
}

#[tokio::test]
async fn redis_bus_delivers_only_subscribed_topics() {
    if let Some(url) = redis_available("redis bus topics").await {
        only_subscribed_topics_arrive(&redis_at(url)).await;
    }
}

#[tokio::test]
async fn redis_bus_reaches_every_subscribed_instance() {
    if let Some(url) = redis_available("redis bus instances").await {
        every_subscribed_instance_gets_each_message(&redis_at(url)).await;
    }
}

#[tokio::test]
async fn a_healthy_redis_connection_passes_its_keepalive_checks() {
    let Some(url) = redis_available("redis keepalive").await else {
        return;
    };
    // Checked every 100 ms: fifteen checks in the time below.
    let a = RedisBus::connect_with_keepalive(&url, Duration::from_millis(100))
        .await
        .unwrap();
    let b = RedisBus::connect(&url).await.unwrap();
    let mut events = a.events().unwrap();
    let t = topic(|id| Topic::Agent(UserId(id)));
    a.subscribe(t).await.unwrap();
    settle().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.reconnects(), 0, "a healthy connection is never dropped");
    assert!(a.is_connected());
    b.publish(t, text("still here")).await.unwrap();
    // Nothing but the message: no resync was ever sent.
    assert_eq!(
        next_message(&mut events).await,
        Some((t, "still here".into()))
    );
}

#[tokio::test]
async fn redis_bus_survives_a_restart_and_tells_everyone_to_resync() {
    let Some(mut server) = PrivateRedis::start("redis restart").await else {
        return;
    };
    let connect = redis_at(server.url());
    let a = connect().await;
    let b = connect().await;
    let mut events = a.events().unwrap();
    a.subscribe(public(5)).await.unwrap();
    settle().await;
    b.publish(public(5), text("before")).await.unwrap();
    assert_eq!(
        next_message(&mut events).await,
        Some((public(5), "before".into()))
    );

    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.is_connected(), "the outage is noticed");
    assert!(
        b.publish(public(5), text("lost")).await.is_err(),
        "publishing fails clearly while Redis is down"
    );
    // Subscribing while Redis is away is remembered and done on reconnect.
    a.subscribe(public(6)).await.unwrap();
    server.restart().await;

    let resync = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("resync within 10 s");
    match resync {
        Some(BusEvent::Resync { topics }) => {
            assert!(
                topics.contains(&public(5)) && topics.contains(&public(6)),
                "{topics:?}"
            );
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    assert!(a.is_connected());
    assert_eq!(a.reconnects(), 1);
    // Publishing works again (the managed connection reconnects by itself).
    let mut published = false;
    for _ in 0..20 {
        if b.publish(public(6), text("after")).await.is_ok() {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(published);
    assert_eq!(
        next_message(&mut events).await,
        Some((public(6), "after".into()))
    );
}

#[tokio::test]
async fn counts_in_a_window_are_shared_by_instances_on_redis_and_start_over_after_it() {
    let Some(url) = redis_available("redis shared counts").await else {
        return;
    };
    let connect = redis_at(url);
    let (a, b) = (connect().await, connect().await);
    // A key of its own: the shared Redis outlives this test.
    let key = format!("test:{}", std::process::id());
    let window = Duration::from_millis(1500);
    let counts = [
        a.count_in_window(&key, window).await.unwrap().unwrap(),
        b.count_in_window(&key, window).await.unwrap().unwrap(),
        a.count_in_window(&key, window).await.unwrap().unwrap(),
    ];
    assert_eq!(counts.map(|(n, _)| n), [1, 2, 3], "one count for both");
    for (_, left) in counts {
        assert!(left <= window && left > Duration::ZERO, "{left:?}");
    }
    // Later counts do not push the window's end back.
    assert!(counts[2].1 <= counts[0].1);
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    let (n, _) = b.count_in_window(&key, window).await.unwrap().unwrap();
    assert_eq!(n, 1, "a new window starts from one");
}

#[tokio::test]
async fn the_local_bus_has_no_shared_count() {
    let bus = local()().await;
    let counted = bus
        .count_in_window("anything", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        counted, None,
        "one process: its own limiters see everything"
    );
}

/// Between instances a payload is the frame alone, as in the release
/// before typed envelopes: during a rolling update old and new instances
/// share Redis, and each reads the other's assignments.
#[tokio::test]
async fn redis_carries_the_frame_alone_so_releases_can_share_it() {
    use futures_util::StreamExt;
    let Some(url) = redis_available("redis wire").await else {
        return;
    };
    let bus = RedisBus::connect(&url).await.unwrap();
    let agent = topic(|id| Topic::Agent(UserId(id)));
    let channel = format!("careline:{agent}");
    let mut events = bus.events().unwrap();
    bus.subscribe(agent).await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut wire = client.get_async_pubsub().await.unwrap();
    wire.subscribe(&channel).await.unwrap();
    settle().await;

    let frame = r#"{"type":"conversation","id":"77"}"#;
    let assignment = Envelope::assignment(Arc::from(frame), ConversationId(77));
    bus.publish(agent, assignment.clone()).await.unwrap();
    let sent: String = wire
        .on_message()
        .next()
        .await
        .unwrap()
        .get_payload()
        .unwrap();
    assert_eq!(sent, frame, "the frame alone crosses Redis");

    // What an instance of the earlier release publishes: the bare frame.
    let mut old_release = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(frame)
        .query_async(&mut old_release)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            next_envelope(&mut events).await,
            Some((agent, assignment.clone())),
            "both arrive as the assignment they are"
        );
    }
}
