//! Real-time chat over real sockets: a visitor on another site's page, the
//! built-in bot, escalation, an agent console, and the delivery contract.

mod support;

use std::time::Duration;

use serde_json::json;
use support::databases::backends;
use support::ws::{Ended, SHOP_ORIGIN};
use support::{Database, TestApp};

#[tokio::test]
async fn customer_bot_handoff_agent_reply_resolve_and_rating() {
    for db in backends("chat story").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin_browser = app.admin().await;
        let agent_browser = app.agent(&mut admin_browser, "Alan Agent", "alan@example.com").await;

        // The agent opens the console and watches the queue.
        let mut agent = app.agent_socket(&agent_browser).await;
        agent.send(json!({"type": "watch_queue"})).await;
        let queue = agent.expect_type("queue").await;
        assert_eq!(queue["waiting"].as_array().unwrap().len(), 0);

        // A visitor starts a chat; the FAQ bot answers a known question.
        let mut visitor = app.visitor(&site).await;
        visitor.send(json!({"type": "start", "client_msg_id": "v1", "body": "When are you open?"})).await;
        let conversation = visitor.expect_type("conversation").await;
        assert_eq!(conversation["status"], "bot");
        let id = conversation["id"].as_str().unwrap().to_string();
        let ack = visitor.expect_type("ack").await;
        assert_eq!(ack["seq"], 1);
        let answer = visitor.expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot").await;
        assert!(answer["body"].as_str().unwrap().contains("Monday to Friday"), "{answer}");
        assert_eq!(answer["seq"], 2);

        // "Talk to a person": the conversation waits with a ticket, and the
        // agent's queue shows it live.
        visitor.send(json!({"type": "handoff", "conversation_id": id})).await;
        let waiting = visitor.expect(|f| f["type"] == "conversation" && f["status"] == "waiting").await;
        let ticket_number = waiting["ticket_number"].as_i64().expect("a ticket was opened");
        let queue = agent.expect(|f| f["type"] == "queue" && !f["waiting"].as_array().unwrap().is_empty()).await;
        assert_eq!(queue["waiting"][0]["conversation_id"], id.as_str());
        assert_eq!(queue["waiting"][0]["ticket_number"], ticket_number);

        // The agent claims it and replies; the visitor sees the reply.
        agent.send(json!({"type": "claim", "conversation_id": id})).await;
        let claimed = agent.expect(|f| f["type"] == "conversation" && f["status"] == "live").await;
        assert_eq!(claimed["assignee"]["name"], "Alan Agent");
        agent.send(json!({"type": "resume", "conversation_id": id, "after_seq": 0})).await;
        agent.expect_type("resumed").await;
        agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "body": "Hi, I'm Alan. How can I help?"})).await;
        agent.expect(|f| f["type"] == "ack" && f["client_msg_id"] == "a1").await;
        let reply = visitor.expect_message("Hi, I'm Alan. How can I help?").await;
        assert_eq!(reply["sender"]["kind"], "agent");
        assert!(reply["sender"].get("id").is_none(), "visitors do not learn agent ids");

        // A private note reaches the agent only.
        agent.send(json!({"type": "note", "conversation_id": id, "client_msg_id": "n1", "body": "VIP customer"})).await;
        agent.expect_message("VIP customer").await;
        visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "v2", "body": "My order is late"})).await;
        let customer_msg = agent.expect_message("My order is late").await;
        let visitor_view = visitor.expect_message("My order is late").await;
        assert!(visitor.log.iter().all(|f| f["body"] != "VIP customer"), "notes never reach a visitor");
        // Each side numbers without gaps: the visitor never saw the note's number.
        assert_eq!(visitor_view["seq"].as_i64().unwrap() + 1, customer_msg["seq"].as_i64().unwrap());

        // Typing reaches the other side.
        visitor.send(json!({"type": "typing", "conversation_id": id})).await;
        agent.expect(|f| f["type"] == "typing" && f["sender"]["kind"] == "customer").await;

        // Resolve, then the visitor rates; the rating lands on the ticket.
        agent.send(json!({"type": "resolve", "conversation_id": id})).await;
        visitor.expect(|f| f["type"] == "conversation" && f["status"] == "resolved").await;
        visitor.send(json!({"type": "rate", "conversation_id": id, "score": 5, "comment": "Quick and kind"})).await;
        visitor.expect(|f| f["type"] == "conversation" && f["status"] == "resolved").await;
        let number = ticket_number;
        let admin_view = admin_browser.get(&format!("/console/tickets/{number}")).await.expect_status(200);
        assert!(admin_view.contains("When are you open?"), "the transcript is on the ticket");
        assert!(admin_view.contains("Customer rated the help 5/5"));
        assert!(admin_view.contains("Status changed from open to resolved") || admin_view.contains("to resolved"));

        // Writing again reopens it, back to Alan.
        visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "v3", "body": "One more thing"})).await;
        visitor.expect(|f| f["type"] == "conversation" && f["status"] == "live").await;
        agent.expect_message("One more thing").await;
        eprintln!("chat story passed on {db:?}");
    }
}
