//! End to end in headless Chromium, as customers and agents use Careline:
//! the widget on a page of another origin talking to an agent in the live
//! console; a network drop healed without duplicates; the portal; and the
//! accessibility basics. Screenshots go to target/screenshots (and to
//! docs/screenshots with CARELINE_UPDATE_SCREENSHOTS=1).
//!
//! Longer than 600 lines: each test binary links the whole server and a
//! browser driver (on two cores, a new binary costs more than a long file);
//! each case reads alone, top to bottom.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use careline::Adapters;
use careline::bot::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use fantoccini::{Client, Locator};
use support::webdriver::{Chrome, WIDGET, fill, screenshot, wait_until};
use support::{Database, TestApp, ticket_number};

/// A shop's page on its own origin, with its own styles and script, that
/// embeds the widget with the one documented tag.
async fn host_page(app: &TestApp, site_key: &str) -> (SocketAddr, String) {
    host_page_with(app, site_key, "").await
}

/// [`host_page`] with `script` run before the widget loads.
async fn host_page_with(app: &TestApp, site_key: &str, script: &str) -> (SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = format!(
        r#"<!doctype html><html><head><title>Shop</title>
<style>body {{ font-family: serif; background: rgb(255, 238, 238); }} button {{ background: rgb(255, 0, 0); }} p {{ color: rgb(0, 0, 128); }}</style>
</head><body><h1>My Shop</h1><p id="host-text">Welcome to the shop</p><button id="host-button">Buy</button>
<script>window.hostCounter = 41; document.getElementById('host-button').addEventListener('click', function () {{ window.hostCounter++; }});</script>
<script>{script}</script>
<script src="{}/widget.js" data-site="{site_key}" async></script>
</body></html>"#,
        app.base
    );
    let router = Router::new().route("/", get(move || async move { Html(html.clone()) }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, format!("http://{addr}"))
}

async fn allow(app: &TestApp, origin: &str) -> String {
    let site = app.store.default_site().await.unwrap();
    let settings = careline::store::SiteSettings {
        name: "Shop support".into(),
        allowed_origins: vec![origin.to_string()],
        greeting: site.greeting.clone(),
        color: "#1f5fc4".into(),
        require_email: false,
        position: careline::model::WidgetPosition::BottomRight,
    };
    app.store.update_site(site.id, &settings).await.unwrap();
    site.key
}

async fn log_in(browser: &Client, app: &TestApp, email: &str, password: &str) {
    browser.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(browser, "#email", email).await;
    fill(browser, "#password", password).await;
    browser
        .find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        browser,
        "the login to finish",
        "!location.pathname.startsWith('/login')",
    )
    .await;
}

/// Clicks something inside the widget's shadow root.
async fn widget_click(browser: &Client, css: &str) {
    let host = browser
        .find(Locator::Css("#careline-widget"))
        .await
        .unwrap();
    let root = host
        .shadow_root()
        .await
        .expect("the widget has a shadow root");
    root.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn widget_type(browser: &Client, text: &str) {
    let host = browser
        .find(Locator::Css("#careline-widget"))
        .await
        .unwrap();
    let root = host.shadow_root().await.unwrap();
    let input = root.find(Locator::Css("#cl-input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap(); // Enter sends
}

/// How many message bubbles in the widget have exactly this text.
fn widget_count(text: &str) -> String {
    format!(
        "Array.from({WIDGET}.querySelectorAll('.message .body')).filter(e => e.textContent === {}).length",
        serde_json::to_string(text).unwrap()
    )
}

/// An agent logged in, on the live console, connected.
async fn console(chrome: &mut Chrome, app: &TestApp, email: &str) -> Client {
    let agent = chrome.session(1300, 900).await;
    log_in(&agent, app, email, "agent password 1").await;
    agent
        .goto(&format!("{}/console/chat", app.base))
        .await
        .unwrap();
    wait_until(
        &agent,
        "the console to connect",
        "document.getElementById('connection').textContent === 'Connected'",
    )
    .await;
    agent
}

/// A customer on the shop's page with the chat open.
async fn shop_with_chat_open(chrome: &mut Chrome, host: &str) -> Client {
    let customer = chrome.session(1200, 800).await;
    customer.goto(host).await.unwrap();
    wait_until(
        &customer,
        "the widget",
        &format!("{WIDGET} && {WIDGET}.querySelector('.launcher')"),
    )
    .await;
    widget_click(&customer, ".launcher").await;
    customer
}

/// `agent` claims the first waiting conversation over a socket of their
/// own; returns the socket and the conversation's id.
async fn claim_by_socket(
    app: &TestApp,
    agent: &support::browser::Browser,
) -> (support::ws::WsClient, String) {
    let mut console = app.agent_socket(agent).await;
    console
        .send(serde_json::json!({"type": "watch_queue"}))
        .await;
    let queue = console
        .expect(|f| f["type"] == "queue" && !f["waiting"].as_array().unwrap().is_empty())
        .await;
    let id = queue["waiting"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    console.claim(&id).await;
    (console, id)
}

/// A customer on the shop's page (`script` run before the widget loads)
/// who asked for a person, and Alan, an agent, who claimed the chat over a
/// socket of his own: the customer's browser, Alan's socket and the
/// conversation's id.
async fn a_customer_alan_took(
    chrome: &mut Chrome,
    app: &TestApp,
    script: &str,
) -> (Client, support::ws::WsClient, String) {
    let mut admin = app.admin().await;
    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page_with(app, &key, script).await;
    allow(app, &host).await;
    let customer = shop_with_chat_open(chrome, &host).await;
    widget_type(&customer, "talk to a person please").await;
    wait_until(
        &customer,
        "waiting",
        &format!("{WIDGET}.querySelector('.status').textContent.includes('Waiting')"),
    )
    .await;
    let (console, id) = claim_by_socket(app, &alan).await;
    (customer, console, id)
}

/// The agent takes the one conversation waiting in the queue.
async fn claim_from_queue(agent: &Client) {
    wait_until(
        agent,
        "the queue to show the chat",
        "document.querySelectorAll('#queue li').length === 1",
    )
    .await;
    agent
        .find(Locator::Css("#queue li button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_customer_on_another_site_chats_with_the_bot_then_an_agent_who_resolves_and_gets_rated() {
    let Some(mut chrome) = Chrome::start("browser chat").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let _agent = app
        .agent(&mut admin, "Alan Agent", "alan@example.com")
        .await;
    // The host page's origin must be allowed before the widget loads.
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page(&app, &key).await;
    allow(&app, &host).await;

    // The agent opens the live console (away: conversations wait in the queue).
    let agent = console(&mut chrome, &app, "alan@example.com").await;

    // The customer, on the shop's page, asks the bot, then for a person.
    let customer = shop_with_chat_open(&mut chrome, &host).await;
    widget_type(&customer, "When are you open?").await;
    wait_until(
        &customer,
        "the bot's answer",
        &format!("{WIDGET}.querySelector('.message.bot .body')"),
    )
    .await;
    let answer: String = customer
        .execute(
            &format!("return {WIDGET}.querySelector('.message.bot .body').textContent"),
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert!(answer.contains("Monday to Friday"), "{answer}");
    widget_click(&customer, ".human").await;
    wait_until(
        &customer,
        "waiting for a person",
        &format!("{WIDGET}.querySelector('.status').textContent.includes('Waiting for a person')"),
    )
    .await;
    screenshot(&customer, "widget").await;

    // The conversation appears in the agent's queue live; the agent claims it and replies.
    claim_from_queue(&agent).await;
    wait_until(
        &agent,
        "the chat pane",
        "document.getElementById('pane-title').textContent.includes('live')",
    )
    .await;
    let message = agent.find(Locator::Css("#message")).await.unwrap();
    message
        .send_keys("Hi, I am Alan. How can I help?")
        .await
        .unwrap();
    message.send_keys("\u{E007}").await.unwrap();
    wait_until(
        &customer,
        "the agent's reply",
        &format!("{} === 1", widget_count("Hi, I am Alan. How can I help?")),
    )
    .await;
    widget_type(&customer, "My parcel is late").await;
    wait_until(&agent, "the customer's message", "Array.from(document.querySelectorAll('#transcript .body')).some(e => e.textContent === 'My parcel is late')").await;
    screenshot(&agent, "console").await;

    // The agent resolves; the customer rates.
    agent
        .find(Locator::Css("#resolve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &customer,
        "the rating form",
        &format!("{WIDGET}.querySelector('.rating')"),
    )
    .await;
    widget_click(&customer, ".stars button:nth-child(5)").await;
    widget_click(&customer, ".rating button[type=submit]").await;
    wait_until(
        &customer,
        "thanks",
        &format!("{WIDGET}.querySelector('.thanks')"),
    )
    .await;
    let conversation = app.store.queue().await.unwrap();
    assert!(conversation.is_empty());

    // The host page is untouched: its styles and its script.
    let host_state = customer
        .execute(
            "return [getComputedStyle(document.getElementById('host-button')).backgroundColor, \
                     getComputedStyle(document.getElementById('host-text')).color, \
                     getComputedStyle(document.body).fontFamily, window.hostCounter, \
                     document.body.children.length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(host_state[0], "rgb(255, 0, 0)");
    assert_eq!(host_state[1], "rgb(0, 0, 128)");
    assert_eq!(host_state[2], "serif");
    assert_eq!(host_state[3], 41);
    customer
        .find(Locator::Css("#host-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        customer
            .execute("return window.hostCounter", vec![])
            .await
            .unwrap(),
        42
    );
    customer.close().await.ok();
    agent.close().await.ok();
}

#[tokio::test]
async fn after_a_network_drop_the_widget_resumes_without_duplicates() {
    let Some(mut chrome) = Chrome::start("browser resume").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    // The agent answers over a socket of their own.
    let (customer, mut console, id) = a_customer_alan_took(&mut chrome, &app, "").await;
    console.send(serde_json::json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "body": "Before the drop"})).await;
    wait_until(
        &customer,
        "the first reply",
        &format!("{} === 1", widget_count("Before the drop")),
    )
    .await;

    // The customer's connection drops (the server cuts every socket), the
    // agent writes meanwhile; the widget reconnects and resumes.
    app.hub.kill_visitors(1001);
    for i in 1..=3 {
        console.send(serde_json::json!({"type": "send", "conversation_id": id, "client_msg_id": format!("d{i}"), "body": format!("While away {i}")})).await;
    }
    for i in 1..=3 {
        wait_until(
            &customer,
            "the missed replies",
            &format!("{} === 1", widget_count(&format!("While away {i}"))),
        )
        .await;
    }
    // No duplicates, in order.
    let bodies = customer
        .execute(&format!("return Array.from({WIDGET}.querySelectorAll('.message .body')).map(e => e.textContent)"), vec![])
        .await
        .unwrap();
    let bodies: Vec<String> = bodies
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies.iter().filter(|b| *b == "Before the drop").count(), 1);
    let away: Vec<&String> = bodies
        .iter()
        .filter(|b| b.starts_with("While away"))
        .collect();
    assert_eq!(away, vec!["While away 1", "While away 2", "While away 3"]);
    customer.close().await.ok();
}

/// A bot that asks which order, with buttons, then answers the choice with
/// one button of its own.
struct OrderBot;

impl Bot for OrderBot {
    fn reply<'a>(&'a self, turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        let (text, options): (&str, &[&str]) = if turn.text == "Latest order" {
            ("It ships today.", &["Track it"])
        } else {
            ("Which order?", &["Latest order", "Another order"])
        };
        let reply = BotReply::Answer {
            text: text.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        Box::pin(async move { Ok(reply) })
    }
    fn name(&self) -> &'static str {
        "orders"
    }
}

/// Waits until the widget's bot messages show these buttons, one list per
/// bot message, each label marked `+` (can be clicked) or `-` (disabled).
async fn wait_for_bot_buttons(customer: &Client, what: &str, expected: serde_json::Value) {
    wait_until(
        customer,
        what,
        &format!(
            "JSON.stringify(Array.from({WIDGET}.querySelectorAll('.message.bot')).map(m => \
               Array.from(m.querySelectorAll('.options button')).map(b => (b.disabled ? '-' : '+') + b.textContent))) === {}",
            serde_json::to_string(&expected.to_string()).unwrap()
        ),
    )
    .await;
}

#[tokio::test]
async fn after_a_reload_the_widget_offers_the_latest_bot_questions_buttons_and_only_those() {
    let Some(mut chrome) = Chrome::start("browser bot options").await else {
        return;
    };
    let adapters = Adapters {
        bot: Some(Arc::new(OrderBot)),
        ..Adapters::default()
    };
    let app = TestApp::spawn_full(Database::Sqlite, |_| {}, adapters).await;
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page(&app, &key).await;
    allow(&app, &host).await;
    let customer = shop_with_chat_open(&mut chrome, &host).await;
    widget_type(&customer, "Where is my order?").await;
    let asked = serde_json::json!([["+Latest order", "+Another order"]]);
    wait_for_bot_buttons(&customer, "the bot's question with buttons", asked.clone()).await;

    // A reload: everything comes back from the database, buttons included.
    let reload = async || {
        customer.refresh().await.unwrap();
        wait_until(
            &customer,
            "the widget",
            &format!("{WIDGET} && {WIDGET}.querySelector('.launcher')"),
        )
        .await;
        widget_click(&customer, ".launcher").await;
    };
    reload().await;
    wait_for_bot_buttons(&customer, "the buttons after a reload", asked).await;

    // Clicking one does what it does live: the customer says it.
    widget_click(&customer, ".message.bot .options button").await;
    wait_until(
        &customer,
        "the customer's choice",
        &format!("{} === 1", widget_count("Latest order")),
    )
    .await;
    let answered = serde_json::json!([["-Latest order", "-Another order"], ["+Track it"]]);
    wait_for_bot_buttons(
        &customer,
        "the answer, the question's buttons now history",
        answered.clone(),
    )
    .await;
    reload().await;
    wait_for_bot_buttons(&customer, "the same after another reload", answered).await;
    customer.close().await.ok();
}

/// What the unreliable network's tests send, in order.
const GAP_BODIES: [&str; 6] = [
    "Held back",
    "Overtakes it",
    "Lost on the way",
    "After the loss",
    "Lost twice",
    "Last",
];

/// Stands between a page and its socket (the widget's on the shop's page,
/// or the console's): records the type of every frame the page sends
/// (`window.__sent`), holds the first "Held back" message frame for 200 ms
/// (so the next one overtakes it, as a message from another instance can),
/// drops the first "Lost on the way" (as a lost frame) and the first two
/// "Lost twice" (live, then in the resume's replay).
const UNRELIABLE_NETWORK: &str = r#"
window.__sent = [];
(function () {
  var Native = window.WebSocket, seen = {}, drops = { "Lost on the way": 1, "Lost twice": 2 };
  function Unreliable(url) {
    var ws = new Native(url);
    var send = ws.send.bind(ws);
    ws.send = function (data) { window.__sent.push(JSON.parse(data).type); send(data); };
    Object.defineProperty(ws, "onmessage", { set: function (handler) {
      ws.addEventListener("message", function (e) {
        var f = JSON.parse(e.data);
        var times = f.type === "message" ? (seen[f.body] = (seen[f.body] || 0) + 1) : 0;
        if (times && times <= (drops[f.body] || 0)) return;
        if (times === 1 && f.body === "Held back") { setTimeout(function () { handler.call(ws, e); }, 200); return; }
        handler.call(ws, e);
      });
    } });
    return ws;
  }
  Unreliable.prototype = Native.prototype;
  window.WebSocket = Unreliable;
})();
"#;

/// The other side (`writer`, a socket in conversation `id`) sends
/// [`GAP_BODIES`] through [`UNRELIABLE_NETWORK`] to `page`, whose message
/// bodies are the elements of the JS expression `bodies`: an overtaken
/// message is waited for (no resume), a lost one fetched after the grace
/// (one resume), one lost in the replay too fetched again (two more).
async fn gaps_are_waited_for_then_fetched(
    page: &Client,
    bodies: &str,
    writer: &mut support::ws::WsClient,
    id: &str,
) {
    let resumes = async || -> u64 {
        let sent = page
            .execute(
                "return window.__sent.filter(t => t === 'resume').length",
                vec![],
            )
            .await
            .unwrap();
        sent.as_u64().unwrap()
    };
    let shown = async || -> Vec<String> {
        let script = format!("return Array.from({bodies}).map(e => e.textContent)");
        let all: Vec<String> =
            serde_json::from_value(page.execute(&script, vec![]).await.unwrap()).unwrap();
        all.into_iter()
            .filter(|b| GAP_BODIES.contains(&b.as_str()))
            .collect()
    };
    let shows = |body: &str| {
        format!(
            "Array.from({bodies}).filter(e => e.textContent === {}).length === 1",
            serde_json::to_string(body).unwrap()
        )
    };
    let before = resumes().await;
    let mut sent = 0;
    let mut write = async |body: &str| {
        sent += 1;
        writer
            .send(serde_json::json!({"type": "send", "conversation_id": id, "client_msg_id": format!("g{sent}"), "body": body}))
            .await;
        writer.expect(|f| f["type"] == "ack").await;
    };

    // Overtaken: the held frame arrives 200 ms late, within the grace.
    write("Held back").await;
    write("Overtakes it").await;
    wait_until(
        page,
        "both messages",
        &format!("{} && {}", shows("Held back"), shows("Overtakes it")),
    )
    .await;
    // Past the grace (500 ms after the gap opened): no resume was needed.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        resumes().await,
        before,
        "an overtaken message is waited for, not fetched"
    );
    assert_eq!(shown().await, GAP_BODIES[..2], "shown in seq order");

    // Lost: after the grace the page resumes and gets it from the server.
    write("Lost on the way").await;
    write("After the loss").await;
    wait_until(page, "the lost message, fetched", &shows("Lost on the way")).await;
    assert_eq!(resumes().await, before + 1, "one resume for the lost frame");
    assert_eq!(shown().await, GAP_BODIES[..4], "in order, each once");

    // Lost again in the resume's replay: `resumed` says it was sent, so
    // the page asks once more.
    write("Lost twice").await;
    write("Last").await;
    wait_until(
        page,
        "the message lost twice, fetched again",
        &shows("Lost twice"),
    )
    .await;
    assert_eq!(
        resumes().await,
        before + 3,
        "a second resume after the first came up short"
    );
    assert_eq!(shown().await, GAP_BODIES, "in order, each once");
}

#[tokio::test]
async fn the_widget_waits_for_an_overtaken_message_and_resumes_for_a_lost_one_until_it_has_it() {
    let Some(mut chrome) = Chrome::start("browser gaps").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let (customer, mut console, id) =
        a_customer_alan_took(&mut chrome, &app, UNRELIABLE_NETWORK).await;
    let bodies = format!("{WIDGET}.querySelectorAll('.message .body')");
    gaps_are_waited_for_then_fetched(&customer, &bodies, &mut console, &id).await;
    customer.close().await.ok();
}

#[tokio::test]
async fn the_console_waits_for_an_overtaken_message_and_resumes_for_a_lost_one_until_it_has_it() {
    let Some(mut chrome) = Chrome::start("browser console gaps").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    app.agent(&mut admin, "Alan", "alan@example.com").await;
    let site = app.allow_shop().await;
    let agent = console(&mut chrome, &app, "alan@example.com").await;
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(serde_json::json!({"type": "start", "client_msg_id": "first", "body": "talk to a person please"}))
        .await;
    let id = visitor.expect(|f| f["type"] == "conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    claim_from_queue(&agent).await;
    wait_until(
        &agent,
        "the chat pane",
        "document.getElementById('pane-title').textContent.includes('live')",
    )
    .await;

    // The console's next socket goes through the unreliable network: put
    // it in the page, then cut the console's connection.
    agent.execute(UNRELIABLE_NETWORK, vec![]).await.unwrap();
    app.hub.kill_consoles(1001);
    wait_until(
        &agent,
        "the console to reconnect and resume",
        "window.__sent.includes('hello') && window.__sent.includes('resume')",
    )
    .await;
    gaps_are_waited_for_then_fetched(
        &agent,
        "document.querySelectorAll('#transcript .body')",
        &mut visitor,
        &id,
    )
    .await;
    agent.close().await.ok();
}

#[tokio::test]
async fn the_portal_raise_a_ticket_and_follow_the_reply_and_status() {
    let Some(mut chrome) = Chrome::start("browser portal").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let browser = chrome.session(1200, 900).await;
    browser
        .goto(&format!("{}/register", app.base))
        .await
        .unwrap();
    fill(&browser, "#name", "Grace Hopper").await;
    fill(&browser, "#email", "grace@example.com").await;
    fill(&browser, "#password", "customer password").await;
    browser
        .find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &browser,
        "the dashboard",
        "location.pathname === '/dashboard'",
    )
    .await;
    browser
        .goto(&format!("{}/tickets/new", app.base))
        .await
        .unwrap();
    fill(&browser, "#subject", "Invoice shows the wrong address").await;
    fill(&browser, "#description", "It still shows my old street.").await;
    browser
        .find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &browser,
        "the ticket page",
        "location.pathname.startsWith('/tickets/1')",
    )
    .await;
    let path = browser.current_url().await.unwrap().path().to_string();
    let number = ticket_number(&path);

    // Staff reply and set it pending.
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/reply"),
            &[("body", "Fixed: please check the new invoice.")],
        )
        .await;
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/update"),
            &[("status", "pending")],
        )
        .await;

    browser.refresh().await.unwrap();
    let page = browser.source().await.unwrap();
    assert!(page.contains("Fixed: please check the new invoice."));
    assert!(page.contains("Status changed from open to pending"));
    screenshot(&browser, "portal").await;
}

#[tokio::test]
async fn accessibility_basics_labels_focus_and_the_widget_by_keyboard_alone() {
    let Some(mut chrome) = Chrome::start("browser accessibility").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let _ = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let browser = chrome.session(1200, 900).await;
    // Every form field on the public pages is labelled.
    let unlabelled = "Array.from(document.querySelectorAll('input:not([type=hidden]), textarea, select')).filter(f => \
        !(f.id && document.querySelector('label[for=\"' + f.id + '\"]')) && !f.closest('label') && !f.getAttribute('aria-label')).map(f => f.name)";
    for path in ["/login", "/register", "/password/forgot"] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        let missing = browser
            .execute(&format!("return {unlabelled}"), vec![])
            .await
            .unwrap();
        assert_eq!(missing, serde_json::json!([]), "{path}");
    }
    log_in(&browser, &app, "alan@example.com", "agent password 1").await;
    for path in ["/console", "/console/chat", "/account"] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        let missing = browser
            .execute(&format!("return {unlabelled}"), vec![])
            .await
            .unwrap();
        assert_eq!(missing, serde_json::json!([]), "{path}");
    }
    // Focus is visible: a focused control draws an outline.
    browser
        .goto(&format!("{}/account", app.base))
        .await
        .unwrap();
    let outline = browser
        .execute("const f = document.getElementById('name'); f.focus(); return getComputedStyle(f).outlineStyle", vec![])
        .await
        .unwrap();
    assert_ne!(outline, "none", "focused fields show an outline");

    // The widget by keyboard alone: Tab reaches the launcher, Enter opens it
    // (focus goes to the message box), Enter sends, Escape closes.
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page(&app, &key).await;
    allow(&app, &host).await;
    let customer = chrome.session(1200, 800).await;
    customer.goto(&host).await.unwrap();
    wait_until(
        &customer,
        "the widget",
        &format!("{WIDGET} && {WIDGET}.querySelector('.launcher')"),
    )
    .await;
    let mut reached = false;
    for _ in 0..10 {
        customer
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap(); // Tab
        let on_launcher = customer
            .execute(&format!("return {WIDGET}.activeElement && {WIDGET}.activeElement.classList.contains('launcher')"), vec![])
            .await
            .unwrap();
        if on_launcher == true {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the chat launcher");
    customer
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap(); // Enter
    wait_until(
        &customer,
        "the panel to open with focus in the message box",
        &format!("{WIDGET}.activeElement && {WIDGET}.activeElement.id === 'cl-input'"),
    )
    .await;
    customer
        .active_element()
        .await
        .unwrap()
        .send_keys("When are you open?\u{E007}")
        .await
        .unwrap();
    wait_until(
        &customer,
        "the bot's answer",
        &format!("{WIDGET}.querySelector('.message.bot')"),
    )
    .await;
    customer
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap(); // Escape
    wait_until(
        &customer,
        "the panel to close",
        &format!("{WIDGET}.querySelector('.panel').hidden"),
    )
    .await;
    let launcher_focused = customer
        .execute(&format!("return {WIDGET}.activeElement && {WIDGET}.activeElement.classList.contains('launcher')"), vec![])
        .await
        .unwrap();
    assert_eq!(launcher_focused, true, "focus returns to the launcher");
}

#[tokio::test]
async fn stored_xss_is_shown_as_text_in_the_console_the_widget_and_the_portal() {
    let Some(mut chrome) = Chrome::start("browser xss").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let _ = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page(&app, &key).await;
    allow(&app, &host).await;
    let payloads = [
        "<img src=x onerror=\"window.__xss=1\">",
        "<script>window.__xss=2</script>",
        "<a href=\"javascript:window.__xss=3\">click</a>",
    ];

    // The customer writes hostile text in the widget and asks for a person.
    let customer = shop_with_chat_open(&mut chrome, &host).await;
    for payload in payloads {
        widget_type(&customer, payload).await;
    }
    widget_type(&customer, "talk to a person").await;
    wait_until(
        &customer,
        "waiting",
        &format!("{WIDGET}.querySelector('.status').textContent.includes('Waiting')"),
    )
    .await;

    // The agent opens it in the console and answers in kind.
    let agent = console(&mut chrome, &app, "alan@example.com").await;
    claim_from_queue(&agent).await;
    wait_until(&agent, "the hostile messages shown as text", "Array.from(document.querySelectorAll('#transcript .body')).filter(e => e.textContent.includes('window.__xss')).length === 3").await;
    let message = agent.find(Locator::Css("#message")).await.unwrap();
    message
        .send_keys("<img src=y onerror=\"window.__xss=4\">")
        .await
        .unwrap();
    message.send_keys("\u{E007}").await.unwrap();
    wait_until(
        &customer,
        "the agent's hostile reply shown as text",
        &format!(
            "{} === 1",
            widget_count("<img src=y onerror=\"window.__xss=4\">")
        ),
    )
    .await;

    // The staff ticket page shows the transcript too.
    let number = app
        .store
        .ticket_by_number(careline::model::TicketNumber(1001))
        .await
        .unwrap()
        .expect("ticket")
        .number;
    agent
        .goto(&format!("{}/console/tickets/{number}", app.base))
        .await
        .unwrap();
    wait_until(
        &agent,
        "the ticket page",
        "document.querySelector('.thread')",
    )
    .await;

    for (who, browser) in [("agent", &agent), ("customer", &customer)] {
        let fired = browser
            .execute("return window.__xss === undefined", vec![])
            .await
            .unwrap();
        assert_eq!(fired, true, "no script ran in the {who}'s browser");
        let injected = browser
            .execute(
                "const w = document.getElementById('careline-widget'); \
                 return document.querySelectorAll('img, script:not([src])').length - document.querySelectorAll('script:not([src])').length \
                      + (w && w.shadowRoot ? w.shadowRoot.querySelectorAll('img, script, a[href^=javascript]').length : 0)",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, 0, "no element was injected in the {who}'s page");
    }
}

/// A 1×1 PNG: a real image, so a thumbnail that loads has a width.
const ONE_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

#[tokio::test]
async fn files_go_both_ways_as_thumbnails_and_downloads() {
    use base64::Engine;
    let Some(mut chrome) = Chrome::start("browser files").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let _agent = app
        .agent(&mut admin, "Alan Agent", "alan@example.com")
        .await;
    let key = app.store.default_site().await.unwrap().key;
    let (_, host) = host_page(&app, &key).await;
    allow(&app, &host).await;
    let files = tempfile::tempdir().unwrap();
    let picture = files.path().join("pixel.png");
    std::fs::write(
        &picture,
        base64::engine::general_purpose::STANDARD
            .decode(ONE_PIXEL_PNG)
            .unwrap(),
    )
    .unwrap();
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "Steps to fix:\n1. restart\n").unwrap();

    let agent = console(&mut chrome, &app, "alan@example.com").await;
    let customer = shop_with_chat_open(&mut chrome, &host).await;
    widget_type(&customer, "I need a person").await;
    widget_click(&customer, ".human").await;
    claim_from_queue(&agent).await;
    wait_until(
        &agent,
        "the chat pane",
        "document.getElementById('pane-title').textContent.includes('live')",
    )
    .await;

    // The customer picks a picture: it reaches the agent as a thumbnail
    // (read with the agent's session) and shows in the widget as one (read
    // with the visitor's token, cross-origin).
    let host_el = customer
        .find(Locator::Css("#careline-widget"))
        .await
        .unwrap();
    let root = host_el.shadow_root().await.unwrap();
    root.find(Locator::Css("#cl-file"))
        .await
        .unwrap()
        .send_keys(&picture.to_string_lossy())
        .await
        .unwrap();
    wait_until(
        &agent,
        "the customer's picture",
        "Array.from(document.querySelectorAll('#transcript .attachment img.thumb')).some(i => i.complete && i.naturalWidth === 1)",
    )
    .await;
    wait_until(
        &customer,
        "the picture in the widget",
        &format!("Array.from({WIDGET}.querySelectorAll('.file img.thumb')).some(i => i.complete && i.naturalWidth === 1)"),
    )
    .await;

    // The agent attaches a text file: the customer gets a download link
    // with its name and size.
    agent
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&notes.to_string_lossy())
        .await
        .unwrap();
    wait_until(
        &customer,
        "the agent's file",
        &format!("Array.from({WIDGET}.querySelectorAll('.file .download')).some(a => a.textContent === 'notes.txt (25 B)')"),
    )
    .await;
    screenshot(&customer, "widget-files").await;
    screenshot(&agent, "console-files").await;
    customer.close().await.ok();
    agent.close().await.ok();
}

#[tokio::test]
async fn each_site_places_its_widget_an_archived_one_says_it_is_closed_and_the_console_filters() {
    let Some(mut chrome) = Chrome::start("browser sites").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let _agent = app
        .agent(&mut admin, "Alan Agent", "alan@example.com")
        .await;
    // The shop (bottom right) and a help centre (bottom left), each on a
    // page of its own origin.
    let shop = app.store.default_site().await.unwrap();
    let (_, shop_page) = host_page(&app, &shop.key).await;
    allow(&app, &shop_page).await;
    let mut help = careline::store::SiteSettings {
        name: "Help centre".into(),
        allowed_origins: Vec::new(),
        greeting: "Ask the help centre".into(),
        color: "#0055aa".into(),
        require_email: false,
        position: careline::model::WidgetPosition::BottomLeft,
    };
    let same = careline::domain::sites::same_name;
    let careline::store::SiteSaved::Saved(help_id) =
        app.store.save_site(None, &help, same).await.unwrap()
    else {
        panic!("the help centre is added");
    };
    let help_key = app.store.site(help_id).await.unwrap().unwrap().key;
    let (_, help_page) = host_page(&app, &help_key).await;
    help.allowed_origins = vec![help_page.clone()];
    app.store.update_site(help_id, &help).await.unwrap();

    let agent = console(&mut chrome, &app, "alan@example.com").await;
    let on_shop = shop_with_chat_open(&mut chrome, &shop_page).await;
    widget_type(&on_shop, "talk to a person please").await;
    let on_help = shop_with_chat_open(&mut chrome, &help_page).await;
    widget_type(&on_help, "talk to a person please").await;
    let on_the_left = "(() => { const r = document.getElementById('careline-widget').shadowRoot\
        .querySelector('.launcher').getBoundingClientRect(); return r.right < window.innerWidth / 2; })()";
    wait_until(&on_help, "the launcher at the bottom left", on_the_left).await;
    let shop_left = on_shop
        .execute(&format!("return {on_the_left};"), vec![])
        .await;
    assert_eq!(
        shop_left.unwrap(),
        serde_json::json!(false),
        "the shop's stays right"
    );

    // Both chats wait in the console, each with its site; narrowed to the
    // help centre, the queue lists its chat only (and counts the other),
    // and the address keeps the choice.
    wait_until(
        &agent,
        "both chats",
        "document.querySelectorAll('#queue li').length === 2",
    )
    .await;
    let queue = agent
        .execute(
            "return document.getElementById('queue').textContent",
            vec![],
        )
        .await
        .unwrap();
    let queue = queue.as_str().unwrap();
    assert!(
        queue.contains("Shop support") && queue.contains("Help centre"),
        "{queue}"
    );
    agent
        .execute(
            &format!("const s = document.getElementById('site-filter'); s.value = '{help_id}'; s.dispatchEvent(new Event('change'));"),
            vec![],
        )
        .await
        .unwrap();
    wait_until(
        &agent,
        "the queue narrowed to the help centre",
        "document.querySelectorAll('#queue li').length === 1 && document.getElementById('queue').textContent.includes('Help centre')",
    )
    .await;
    // What the filter hides is counted, not dropped.
    let others = agent
        .execute(
            "return document.getElementById('queue-others').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(others, serde_json::json!("1 more waiting on other sites."));
    let address = agent
        .execute("return location.search", vec![])
        .await
        .unwrap();
    assert_eq!(address, serde_json::json!(format!("?site={help_id}")));
    screenshot(&agent, "console-by-site").await;

    // The shop is removed: it has a conversation, so it is archived. A
    // customer who opens its page now reads why the chat is closed, and
    // cannot type.
    admin.get("/admin/sites").await;
    admin
        .submit(&format!("/admin/sites/{}/remove", shop.id), &[])
        .await
        .expect_redirect("/admin/sites?done=archived");
    let late = shop_with_chat_open(&mut chrome, &shop_page).await;
    wait_until(
        &late,
        "the closed message",
        &format!(
            "{WIDGET}.querySelector('.message.closed').textContent.includes('Shop support no longer takes new chats')"
        ),
    )
    .await;
    let disabled = late
        .execute(
            &format!("return {WIDGET}.querySelector('#cl-input').disabled"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(disabled, serde_json::json!(true));
    screenshot(&late, "widget-archived-site").await;
    for client in [on_shop, on_help, agent, late] {
        client.close().await.ok();
    }
}

/// A shop's page whose logged-in user the shop's server signed, embedding
/// the widget with the documented data attributes.
async fn signed_in_page(app: &TestApp, site_key: &str, user_id: &str, hash: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = format!(
        r#"<!doctype html><html><head><title>Shop account</title></head><body><h1>Hello, Grace</h1>
<button id="logout" onclick="window.Careline.logout()">Log out</button>
<script src="{}/widget.js" data-site="{site_key}" data-user-id="{user_id}" data-user-hash="{hash}"
        data-user-name="Grace Hopper" data-user-email="grace@example.com" async></script>
</body></html>"#,
        app.base
    );
    let router = Router::new().route("/", get(move || async move { Html(html.clone()) }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_signed_in_customer_finds_their_chat_on_a_second_device_and_logout_forgets_it() {
    let Some(mut chrome) = Chrome::start("browser identity").await else {
        return;
    };
    let app = TestApp::spawn(Database::Sqlite).await;
    let key = app.store.default_site().await.unwrap().key;
    let site = app.store.default_site().await.unwrap().id;
    let mut admin = app.admin().await;
    admin
        .get(&format!("/admin/sites/{site}/identity"))
        .await
        .expect_status(200);
    let page = admin
        .submit(&format!("/admin/sites/{site}/identity/rotate"), &[])
        .await;
    let start = page.body.find("cls_").expect("the secret is shown once");
    let secret: String = page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let hash = careline::domain::identity::signature(&secret, "u-1042");
    let host = signed_in_page(&app, &key, "u-1042", &hash).await;
    allow(&app, &host).await;

    // On the laptop, Grace asks something.
    let laptop = shop_with_chat_open(&mut chrome, &host).await;
    widget_type(&laptop, "Sent from my laptop").await;
    wait_until(
        &laptop,
        "the bot's answer",
        &format!("{WIDGET}.querySelector('.message.bot .body')"),
    )
    .await;

    // On her phone (another browser, nothing stored), the same chat.
    let phone = shop_with_chat_open(&mut chrome, &host).await;
    wait_until(
        &phone,
        "the laptop's message on the phone",
        &format!("{} === 1", widget_count("Sent from my laptop")),
    )
    .await;
    screenshot(&phone, "widget-second-device").await;

    // She logs out on the shop: the phone's widget forgets her at once, and
    // its old token opens nothing on the server.
    let token: String = phone
        .execute("return localStorage.getItem(Object.keys(localStorage).find(k => k.endsWith(':token')))", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    phone
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &phone,
        "the widget to forget the conversation",
        &format!("{} === 0", widget_count("Sent from my laptop")),
    )
    .await;
    let session = app
        .widget_session(
            &host,
            serde_json::json!({"site_key": key, "visitor_token": token}),
        )
        .await;
    let session: serde_json::Value = session.json().await.unwrap();
    assert_ne!(session["visitor_token"], serde_json::json!(token));
    assert!(
        session["conversations"].as_array().unwrap().is_empty(),
        "{session}"
    );
}
