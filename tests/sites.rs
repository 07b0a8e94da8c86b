//! Several sites, each with its own widget, over real HTTP and WebSocket:
//! each widget accepted only from its own origins (bootstrap and socket),
//! each site's FAQ bot answering from its own entries, a removed site
//! archived when it has conversations (its widget refuses new chats, its
//! history stays readable), and the site shown and filtered by in the
//! console, the ticket list, the API and the report.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores a second binary costs more than a long file), and each case here
//! reads alone, top to bottom, through the same two sites.

mod support;

use careline::bot::faq::NOT_UNDERSTOOD;
use careline::store::Site;
use serde_json::{Value, json};
use support::ws::{SHOP_ORIGIN, WsClient};
use support::{Browser, Database, TestApp, ticket_number};

const HELP_ORIGIN: &str = "http://help.example";

/// As an admin does it on Admin → Sites & widget: the default site becomes
/// "Shop" on [`SHOP_ORIGIN`], and "Help centre" on [`HELP_ORIGIN`] is added,
/// at the bottom left, asking for an email first.
async fn shop_and_help(app: &TestApp, admin: &mut Browser) -> (Site, Site) {
    let shop = app.store.default_site().await.unwrap();
    admin.get("/admin/sites").await.expect_status(200);
    admin
        .submit(
            &format!("/admin/sites/{}", shop.id),
            &[
                ("site_name", "Shop"),
                ("allowed_origins", SHOP_ORIGIN),
                ("greeting", "Welcome to the shop"),
                ("color", "#aa3300"),
                ("position", "bottom-right"),
            ],
        )
        .await
        .expect_redirect("/admin/sites?done=saved");
    admin
        .submit(
            "/admin/sites",
            &[
                ("site_name", "Help centre"),
                ("allowed_origins", HELP_ORIGIN),
                ("greeting", "Ask the help centre"),
                ("color", "#0055aa"),
                ("position", "bottom-left"),
                ("require_email", "on"),
            ],
        )
        .await
        .expect_redirect("/admin/sites?done=added");
    let sites = app.store.sites().await.unwrap();
    let find = |name: &str| sites.iter().find(|s| s.name == name).unwrap().clone();
    (find("Shop"), find("Help centre"))
}

/// An admin presses "Remove" on site `id`.
async fn remove(admin: &mut Browser, id: careline::model::SiteId) -> support::Page {
    admin
        .submit(&format!("/admin/sites/{id}/remove"), &[])
        .await
}

/// A new visitor of `site` on a page at `origin` starts a chat with `body`;
/// returns the socket and the conversation frame.
async fn chat(app: &TestApp, origin: &str, site: &Site, body: &str) -> (WsClient, Value) {
    let mut visitor = app.visitor_at(origin, &site.key).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "first", "body": body}))
        .await;
    let conversation = visitor.expect_type("conversation").await;
    (visitor, conversation)
}

/// What the bot answers a new visitor of `site` who asks `question`.
async fn bot_answer(app: &TestApp, origin: &str, site: &Site, question: &str) -> String {
    let (mut visitor, _) = chat(app, origin, site, question).await;
    let answer = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    answer["body"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_sites_widget_opens_only_on_its_own_origins() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let (shop, help) = shop_and_help(&app, &mut admin).await;
    assert_ne!(shop.key, help.key);
    let page = admin.get("/admin/sites").await.expect_status(200);
    for site in [&shop, &help] {
        assert!(
            page.contains(&format!("data-site=&quot;{}&quot;", site.key)),
            "each site has its own tag to copy"
        );
        assert!(page.contains(&format!("href=\"/admin/sites/{}/identity\"", site.id)));
    }

    let cases = [
        (SHOP_ORIGIN, &shop, true),
        (HELP_ORIGIN, &shop, false),
        (HELP_ORIGIN, &help, true),
        (SHOP_ORIGIN, &help, false),
    ];
    for (origin, site, allowed) in cases {
        let bootstrap = app
            .widget_session(origin, json!({"site_key": site.key}))
            .await;
        let expected = if allowed { 200 } else { 403 };
        assert_eq!(bootstrap.status(), expected, "{} from {origin}", site.name);
        let socket = app
            .connect_ws(&format!("/ws?site={}", site.key), origin, None)
            .await;
        match socket {
            Ok(socket) if allowed => socket.close().await,
            Err(403) if !allowed => {}
            Ok(_) => panic!("{}'s socket opened from {origin}", site.name),
            Err(status) => panic!("{}'s socket from {origin}: {status}", site.name),
        }
    }

    // Each widget gets its own site's look and place.
    let session = |origin: &'static str, site: &Site| {
        let request = app.widget_session(origin, json!({"site_key": site.key}));
        async move { request.await.json::<Value>().await.unwrap() }
    };
    let on_help = session(HELP_ORIGIN, &help).await;
    assert_eq!(on_help["site"]["name"], "Help centre");
    assert_eq!(on_help["site"]["position"], "bottom-left");
    assert_eq!(on_help["site"]["require_email"], true);
    assert_eq!(on_help["site"]["greeting"], "Ask the help centre");
    let on_shop = session(SHOP_ORIGIN, &shop).await;
    assert_eq!(on_shop["site"]["position"], "bottom-right");
    assert_eq!(on_shop["site"]["color"], "#aa3300");

    // A visitor of one site is nobody on the other, even from its origin.
    let token = on_help["visitor_token"].as_str().unwrap();
    let mut elsewhere = app
        .connect_ws(&format!("/ws?site={}", shop.key), SHOP_ORIGIN, None)
        .await
        .unwrap();
    elsewhere
        .send(json!({"type": "hello", "visitor_token": token}))
        .await;
    let refused = elsewhere.expect_type("error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("unknown visitor token"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_site_forms_refuse_bad_input_and_change_nothing() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let (shop, help) = shop_and_help(&app, &mut admin).await;
    let form = |name: &'static str, origins: &'static str, position: &'static str| {
        vec![
            ("site_name", name),
            ("allowed_origins", origins),
            ("greeting", "Hi"),
            ("color", "#123456"),
            ("position", position),
        ]
    };
    let (add, edit, left) = (
        "/admin/sites".to_string(),
        format!("/admin/sites/{}", help.id),
        "bottom-left",
    );
    let cases = [
        (
            &add,
            "Brand two",
            "https://b.example/chat",
            left,
            "is not an origin like",
        ),
        (
            &add,
            " shop ",
            "https://b.example",
            left,
            "Another site is already called shop",
        ),
        (
            &add,
            "Brand two",
            "https://b.example",
            "top-left",
            "Place the widget at the bottom",
        ),
        (
            &edit,
            "SHOP",
            HELP_ORIGIN,
            left,
            "Another site is already called SHOP",
        ),
        (
            &edit,
            "",
            HELP_ORIGIN,
            left,
            "Give the site a name: the chat shows it as its title.",
        ),
    ];
    for (path, name, origins, position, said) in cases {
        admin.get("/admin/sites").await;
        let fields = form(name, origins, position);
        let refused = admin.submit(path, &fields).await.expect_status(422);
        assert!(refused.contains(said), "{path}: {said}\n{}", refused.body);
        // What was typed is shown again, to be corrected.
        assert!(refused.contains(&format!("value=\"{}\"", fields[0].1.replace('"', "&quot;"))));
    }
    let sites = app.store.sites().await.unwrap();
    assert_eq!(sites.len(), 2, "nothing added");
    assert_eq!(sites[1].name, "Help centre", "nothing changed");
    assert_eq!(sites[1].allowed_origins, [HELP_ORIGIN]);

    // Sites are for admins only: an agent gets nothing and changes nothing.
    let mut agent = app.agent(&mut admin, "Alan", "alan@example.com").await;
    agent.get("/console").await.expect_status(200);
    for path in [
        "/admin/sites".to_string(),
        format!("/admin/sites/{}", shop.id),
        format!("/admin/sites/{}/remove", help.id),
    ] {
        let refused = agent
            .submit(&path, &form("Taken over", "https://evil.example", ""))
            .await;
        assert_eq!(refused.status, 404, "{path}");
    }
    assert_eq!(app.store.sites().await.unwrap().len(), 2);
    assert_eq!(app.store.site(shop.id).await.unwrap().unwrap().name, "Shop");
}

#[tokio::test]
async fn each_sites_bot_answers_from_its_own_faq_entries() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let (shop, help) = shop_and_help(&app, &mut admin).await;
    admin.get("/admin/faq").await.expect_status(200);
    let (shop_id, help_id) = (shop.id.to_string(), help.id.to_string());
    for (questions, answer, site) in [
        (
            "Do you ship to Iceland?",
            "Yes, the shop ships to Iceland in 5 days.",
            &shop_id,
        ),
        (
            "Is the knowledge base available in Welsh?",
            "Yes: choose Cymraeg at the top of any article.",
            &help_id,
        ),
    ] {
        admin
            .submit(
                "/admin/faq",
                &[
                    ("questions", questions),
                    ("answer", answer),
                    ("answers", "some"),
                    ("site", site),
                ],
            )
            .await
            .expect_redirect("/admin/faq?done=added");
    }
    // "Only these sites" needs a site, and one that takes chats.
    for sites in [&[][..], &[("site", "999")]] {
        let mut fields = vec![("questions", "Q"), ("answer", "A"), ("answers", "some")];
        fields.extend_from_slice(sites);
        let refused = admin.submit("/admin/faq", &fields).await.expect_status(422);
        assert!(
            refused.contains("Choose the sites this entry answers on")
                || refused.contains("One of the chosen sites no longer takes chats"),
            "{}",
            refused.body
        );
    }
    let page = admin.get("/admin/faq").await.expect_status(200);
    for answers_on in ["Now: Shop", "Now: Help centre", "Now: All sites"] {
        assert!(page.contains(answers_on), "{answers_on}");
    }

    let iceland = "do you ship to iceland";
    let welsh = "is the knowledge base available in welsh";
    assert_eq!(
        bot_answer(&app, SHOP_ORIGIN, &shop, iceland).await,
        "Yes, the shop ships to Iceland in 5 days."
    );
    assert_eq!(
        bot_answer(&app, HELP_ORIGIN, &help, iceland).await,
        NOT_UNDERSTOOD
    );
    assert_eq!(
        bot_answer(&app, HELP_ORIGIN, &help, welsh).await,
        "Yes: choose Cymraeg at the top of any article."
    );
    assert_eq!(
        bot_answer(&app, SHOP_ORIGIN, &shop, welsh).await,
        NOT_UNDERSTOOD
    );
    // The entries every site shares answer on both.
    for (origin, site) in [(SHOP_ORIGIN, &shop), (HELP_ORIGIN, &help)] {
        let hours = bot_answer(&app, origin, site, "When are you open?").await;
        assert!(hours.contains("Monday to Friday"), "{hours}");
    }

    // The Iceland entry made an answer for every site: the help centre's
    // bot answers it at once (no waiting for a cache).
    let entry = app
        .store
        .faq_entries()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.questions.contains("Iceland"))
        .unwrap();
    admin.get("/admin/faq").await;
    admin
        .submit(
            &format!("/admin/faq/{}", entry.id),
            &[
                ("questions", entry.questions.as_str()),
                ("answer", entry.answer.as_str()),
                ("answers", "all"),
                ("site", &help_id),
            ],
        )
        .await
        .expect_redirect("/admin/faq?done=saved");
    assert_eq!(
        bot_answer(&app, HELP_ORIGIN, &help, iceland).await,
        "Yes, the shop ships to Iceland in 5 days."
    );
}

#[tokio::test]
async fn a_removed_site_with_conversations_is_archived_and_one_without_is_deleted() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    // Alone, the default site stays: portal and email tickets are filed under it.
    let only = app.store.default_site().await.unwrap();
    let page = admin.get("/admin/sites").await;
    assert!(page.contains("It is the only site that takes chats, so it stays"));
    assert!(
        !page.contains("/remove"),
        "no button for what would be refused"
    );
    // Posted anyway, it is refused with the reason.
    let refused = remove(&mut admin, only.id).await.expect_status(422);
    assert!(
        refused.contains("is the only site that takes chats, and tickets raised on the portal or by email are filed under it"),
        "{}",
        refused.body
    );
    let (shop, help) = shop_and_help(&app, &mut admin).await;

    // A site nobody chatted on yet is deleted outright.
    admin
        .submit(
            "/admin/sites",
            &[
                ("site_name", "Spare"),
                ("allowed_origins", ""),
                ("color", "#123"),
            ],
        )
        .await
        .expect_redirect("/admin/sites?done=added");
    let spare = app.store.sites().await.unwrap().pop().unwrap();
    let page = admin.get("/admin/sites").await;
    assert!(page.contains("It has no conversations: removing deletes it."));
    remove(&mut admin, spare.id)
        .await
        .expect_redirect("/admin/sites?done=deleted");
    assert!(app.store.site(spare.id).await.unwrap().is_none());

    // The shop has history: a portal ticket (filed under the default site)
    // and a widget chat, whose widget stays open through the archive.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Broken kettle"),
                ("description", "It leaks"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    let (mut visitor, conversation) = chat(&app, SHOP_ORIGIN, &shop, "Where is my order?").await;
    visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    let token = visitor.token.clone().unwrap();

    let page = admin.get("/admin/sites").await;
    assert!(page.contains("Removing archives it"));
    remove(&mut admin, shop.id)
        .await
        .expect_redirect("/admin/sites?done=archived");
    let page = admin.get("/admin/sites?done=archived").await;
    assert!(page.contains("Archived: its conversations stay readable"));
    assert!(page.contains("Archived sites"));

    // Its widget takes no new chat, and the page can read why.
    let closed = app
        .widget_session(
            SHOP_ORIGIN,
            json!({"site_key": shop.key, "visitor_token": token}),
        )
        .await;
    assert_eq!(closed.status(), 410);
    assert_eq!(closed.headers()["access-control-allow-origin"], SHOP_ORIGIN);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["error"]["code"], "gone");
    let said = closed["error"]["message"].as_str().unwrap();
    assert!(
        said.contains("This chat is closed: Shop no longer takes new chats here"),
        "{said}"
    );
    // Another origin learns nothing more than before.
    let foreign = app
        .widget_session(HELP_ORIGIN, json!({"site_key": shop.key}))
        .await;
    assert_eq!(foreign.status(), 403);
    let socket = app
        .connect_ws(&format!("/ws?site={}", shop.key), SHOP_ORIGIN, None)
        .await;
    assert_eq!(socket.err(), Some(410));
    // A widget open since before: its conversation carries on; a new one
    // is refused with the same words.
    let id = conversation["id"].as_str().unwrap();
    visitor
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "later", "body": "Thanks"}))
        .await;
    visitor.expect_type("ack").await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "another", "body": "One more thing"}))
        .await;
    let gone = visitor.expect_type("error").await;
    assert_eq!(gone["code"], "gone");
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("Shop no longer takes new chats")
    );

    // The help centre carries on, and is the default site now.
    let _ = chat(&app, HELP_ORIGIN, &help, "Hello").await;
    assert_eq!(app.store.default_site().await.unwrap().id, help.id);

    // The customer's ticket page still works, replies too.
    let ticket = grace
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(ticket.contains("Broken kettle") && ticket.contains("It leaks"));
    grace
        .submit(
            &format!("/tickets/{number}/reply"),
            &[("body", "Still leaking")],
        )
        .await
        .expect_redirect(&format!("/tickets/{number}"));
    // Staff still read its history, and find it by its site.
    let list = admin
        .get(&format!("/console?site={}", shop.id))
        .await
        .expect_status(200);
    assert!(list.contains(&format!(">#{number}<")), "{}", list.body);
    assert!(list.contains("Shop (archived)"));
    let thread = admin
        .get(&format!("/console/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(thread.contains("Still leaking"));

    // Its settings stay as they were; removing it again says so; the help
    // centre, now the only site taking chats, stays.
    admin.get("/admin/sites").await;
    let refused = admin
        .submit(
            &format!("/admin/sites/{}", shop.id),
            &[
                ("site_name", "Shop again"),
                ("allowed_origins", SHOP_ORIGIN),
                ("color", "#123456"),
            ],
        )
        .await
        .expect_status(422);
    assert!(refused.contains("This site is archived"));
    assert_eq!(app.store.site(shop.id).await.unwrap().unwrap().name, "Shop");
    let again = remove(&mut admin, shop.id).await.expect_status(422);
    assert!(again.contains("Shop is archived already."));
    let last = remove(&mut admin, help.id).await.expect_status(422);
    assert!(last.contains("Help centre is the only site that takes chats"));
}

/// The row of the report's site table for `site`.
fn report_row<'a>(page: &'a str, site: &Site) -> &'a str {
    let at = page
        .find(&format!("data-site=\"{}\"", site.id))
        .unwrap_or_else(|| panic!("no report row for {}", site.name));
    let row = &page[at..];
    &row[..row.find("</tr>").unwrap()]
}

#[tokio::test]
async fn consoles_ticket_lists_and_reports_show_and_filter_by_site() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let (shop, help) = shop_and_help(&app, &mut admin).await;
    let mut agent = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut console = app.agent_socket(&agent).await;
    console.send(json!({"type": "watch_queue"})).await;
    console.expect_type("queue").await;

    // A chat on each site asks for a person: each waits, with its ticket.
    let mut waiting = Vec::new();
    for (origin, site) in [(SHOP_ORIGIN, &shop), (HELP_ORIGIN, &help)] {
        let (mut visitor, conversation) = chat(&app, origin, site, "I need a person").await;
        assert!(
            conversation.get("site").is_none(),
            "visitors are not told: {conversation}"
        );
        let id = conversation["id"].as_str().unwrap().to_string();
        visitor
            .send(json!({"type": "handoff", "conversation_id": id}))
            .await;
        let frame = visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
        waiting.push((id, frame["ticket_number"].as_i64().unwrap()));
    }
    // And one the shop's bot answers alone.
    bot_answer(&app, SHOP_ORIGIN, &shop, "When are you open?").await;

    let queue = console
        .expect(|f| f["type"] == "queue" && f["waiting"].as_array().unwrap().len() == 2)
        .await;
    for (item, site) in queue["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .zip([&shop, &help])
    {
        assert_eq!(item["site"]["name"], site.name.as_str());
        assert_eq!(item["site"]["id"], site.id.to_string());
    }
    let live = console.claim(&waiting[1].0).await;
    assert_eq!(live["site"]["name"], "Help centre");
    assert_eq!(live["site"]["id"], help.id.to_string());

    // The live console offers the filter, with the chosen site selected.
    let page = agent
        .get(&format!("/console/chat?site={}", help.id))
        .await
        .expect_status(200);
    assert!(
        page.contains(&format!(
            r#"<option value="{}" selected>Help centre</option>"#,
            help.id
        )),
        "{}",
        page.body
    );

    // The ticket list shows each ticket's site and filters by it.
    let (shop_ticket, help_ticket) = (waiting[0].1, waiting[1].1);
    let all = agent.get("/console").await.expect_status(200);
    assert!(all.contains(r#"<td class="site">Shop</td>"#));
    assert!(all.contains(r#"<td class="site">Help centre</td>"#));
    for (site, mine, other) in [
        (&shop, shop_ticket, help_ticket),
        (&help, help_ticket, shop_ticket),
    ] {
        let list = agent
            .get(&format!("/console?site={}", site.id))
            .await
            .expect_status(200);
        assert!(list.contains(&format!(">#{mine}<")), "{}", site.name);
        assert!(!list.contains(&format!(">#{other}<")), "{}", site.name);
        let api = agent
            .get(&format!("/api/v1/tickets?site={}", site.id))
            .await
            .expect_status(200)
            .json();
        let found = api.as_array().unwrap();
        assert_eq!(found.len(), 1, "{api}");
        assert_eq!(found[0]["number"], mine);
        assert_eq!(found[0]["site"]["name"], site.name.as_str());
        assert_eq!(found[0]["site"]["id"], site.id.0);
    }
    let bad = agent
        .get("/api/v1/tickets?site=shop")
        .await
        .expect_status(422);
    assert_eq!(bad.json()["error"]["field"], "site");
    let ticket = agent
        .get(&format!("/console/tickets/{help_ticket}"))
        .await
        .expect_status(200);
    assert!(ticket.contains(r#"<span class="site">Help centre</span>"#));

    // The report splits by site.
    let report = admin.get("/admin/reports").await.expect_status(200);
    for (site, conversations, bot_only, opened) in [(&shop, 2, 1, 1), (&help, 1, 0, 1)] {
        let row = report_row(&report.body, site);
        for (class, n) in [
            ("conversations", conversations),
            ("bot-only", bot_only),
            ("opened", opened),
        ] {
            let cell = format!(r#"<td class="{class}">{n}</td>"#);
            assert!(row.contains(&cell), "{}: {cell} in {row}", site.name);
        }
    }
    assert!(report.contains(r#"<dd id="conversations">3</dd>"#));
}
