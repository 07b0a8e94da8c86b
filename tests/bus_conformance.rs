//! The bus conformance suite: every adapter (the in-process bus now, Redis
//! later) must pass the same checks. `connect` gives a new instance's
//! connection to one shared backend, as several Careline processes have.

use std::sync::Arc;
use std::time::Duration;

use careline::bus::{Bus, BusEvent, LocalBroker};
use tokio::sync::mpsc;

type Connect = Box<dyn Fn() -> Arc<dyn Bus>>;

async fn next_message(events: &mut mpsc::Receiver<BusEvent>) -> Option<(String, String)> {
    match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        Ok(Some(BusEvent::Message { topic, payload })) => {
            Some((topic.to_string(), payload.to_string()))
        }
        _ => None,
    }
}

async fn nothing_more(events: &mut mpsc::Receiver<BusEvent>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), events.recv())
        .await
        .is_err()
}

async fn delivers_in_order_to_subscribers(connect: &Connect) {
    let bus = connect();
    let mut events = bus.events().expect("events are taken once");
    assert!(bus.events().is_none(), "a second taker gets nothing");
    bus.subscribe("c:1").await.unwrap();
    for i in 0..50 {
        bus.publish("c:1", Arc::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            next_message(&mut events).await,
            Some(("c:1".into(), format!("m{i}")))
        );
    }
    assert!(nothing_more(&mut events).await);
}

async fn only_subscribed_topics_arrive(connect: &Connect) {
    let bus = connect();
    let mut events = bus.events().unwrap();
    bus.subscribe("c:1").await.unwrap();
    bus.subscribe("c:1").await.unwrap(); // idempotent: still one delivery
    bus.publish("c:2", Arc::from("elsewhere")).await.unwrap();
    bus.publish("c:1", Arc::from("here")).await.unwrap();
    assert_eq!(
        next_message(&mut events).await,
        Some(("c:1".into(), "here".into()))
    );
    assert!(
        nothing_more(&mut events).await,
        "one delivery, and nothing from c:2"
    );
    bus.unsubscribe("c:1").await.unwrap();
    bus.publish("c:1", Arc::from("after")).await.unwrap();
    assert!(nothing_more(&mut events).await, "nothing after unsubscribe");
    bus.publish("nobody-listens", Arc::from("x")).await.unwrap();
}

async fn every_subscribed_instance_gets_each_message(connect: &Connect) {
    let a = connect();
    let b = connect();
    let c = connect();
    let (mut ea, mut eb, mut ec) = (
        a.events().unwrap(),
        b.events().unwrap(),
        c.events().unwrap(),
    );
    a.subscribe("queue").await.unwrap();
    b.subscribe("queue").await.unwrap();
    c.subscribe("s:9").await.unwrap();
    c.publish("queue", Arc::from("from c")).await.unwrap();
    assert_eq!(
        next_message(&mut ea).await,
        Some(("queue".into(), "from c".into()))
    );
    assert_eq!(
        next_message(&mut eb).await,
        Some(("queue".into(), "from c".into()))
    );
    assert!(nothing_more(&mut ec).await, "c did not subscribe to queue");
    drop(b);
    a.publish("queue", Arc::from("after b left")).await.unwrap();
    assert_eq!(
        next_message(&mut ea).await,
        Some(("queue".into(), "after b left".into()))
    );
    assert!(a.is_connected());
}

async fn a_lagging_instance_is_told_to_resync(connect: &Connect) {
    let fast = connect();
    let slow = connect();
    let mut slow_events = slow.events().unwrap();
    slow.subscribe("c:7").await.unwrap();
    // The slow instance reads nothing while far more than any queue holds is published.
    for i in 0..10_000 {
        fast.publish("c:7", Arc::from(format!("{i}")))
            .await
            .unwrap();
    }
    let mut received = 0;
    let mut told = false;
    let drain = |told: &mut bool, received: &mut usize, event: BusEvent| match event {
        BusEvent::Message { .. } => *received += 1,
        BusEvent::Resync { topics } => {
            *told = true;
            assert!(topics.iter().any(|t| &**t == "c:7"));
        }
    };
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), slow_events.recv()).await
    {
        drain(&mut told, &mut received, event);
    }
    // Once there is room again, the next publish brings the owed resync first.
    fast.publish("c:7", Arc::from("after the storm"))
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
    Box::new(move || Arc::new(broker.connect()) as Arc<dyn Bus>)
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
async fn local_bus_tells_a_lagging_instance_to_resync() {
    a_lagging_instance_is_told_to_resync(&local()).await;
}
