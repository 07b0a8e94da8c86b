//! Verified identity over real HTTP and WebSocket: a site's secret made on
//! the admin page (shown once), the host site's signature checked (forged,
//! another user's, another site's, a rotated secret inside and outside its
//! grace), one customer's history on a second device, an anonymous chat
//! merged when its visitor is verified, a shared browser handed from one
//! customer to another, logout, and "require verified identity".

mod support;

use careline::domain::identity::signature;
use careline::store::SiteIdentity;
use serde_json::{Value, json};
use support::ws::SHOP_ORIGIN;
use support::{Browser, Database, TestApp};

/// The secret the admin page shows once after "Make a secret".
async fn make_secret(admin: &mut Browser, site_id: &str) -> String {
    admin
        .get(&format!("/admin/sites/{site_id}/identity"))
        .await
        .expect_status(200);
    let page = admin
        .submit(&format!("/admin/sites/{site_id}/identity/rotate"), &[])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let start = page.body.find("cls_").expect("the secret is shown");
    let secret: String = page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(secret.len() > 30, "{secret}");
    secret
}

struct Shop {
    app: TestApp,
    admin: Browser,
    site_key: String,
    site_id: String,
    secret: String,
}

async fn shop() -> Shop {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site_key = app.allow_shop().await;
    let site_id = app.store.default_site().await.unwrap().id.to_string();
    let mut admin = app.admin().await;
    let secret = make_secret(&mut admin, &site_id).await;
    Shop {
        app,
        admin,
        site_key,
        site_id,
        secret,
    }
}

impl Shop {
    async fn session(&self, body: Value) -> Value {
        let mut body = body;
        body["site_key"] = json!(self.site_key);
        let response = self.app.widget_session(SHOP_ORIGIN, body).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    fn identity(&self, user_id: &str) -> Value {
        json!({"user_id": user_id, "user_hash": signature(&self.secret, user_id),
               "name": "Grace Hopper", "email": "grace@example.com"})
    }

    /// A conversation started by the visitor holding `token`.
    async fn chat(&self, token: &str, text: &str) -> String {
        let mut visitor = self.app.visitor_with_token(&self.site_key, token).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": format!("s-{text}"), "body": text}))
            .await;
        let id = visitor.expect_type("conversation").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        visitor.close().await;
        id
    }
}

fn ids(session: &Value) -> Vec<String> {
    session["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn only_a_signature_of_this_user_under_this_sites_secret_is_taken() {
    let shop = shop().await;
    let first = shop
        .session(json!({"identity": shop.identity("u-1")}))
        .await;
    assert_eq!(first["verified"], true, "{first}");
    let token = first["visitor_token"].as_str().unwrap().to_string();
    let conversation = shop.chat(&token, "Where is my parcel?").await;

    let forgeries = [
        json!({"user_id": "u-1", "user_hash": "0".repeat(64)}),
        json!({"user_id": "u-1", "user_hash": signature(&shop.secret, "u-2")}),
        json!({"user_id": "u-1", "user_hash": signature("cls_another_sites_secret", "u-1")}),
        json!({"user_id": "u-1", "user_hash": ""}),
    ];
    for forged in forgeries {
        let session = shop.session(json!({"identity": forged})).await;
        assert_eq!(session["verified"], false, "{forged}: {session}");
        assert!(session["identity_error"].is_string(), "{session}");
        assert!(
            ids(&session).is_empty(),
            "no history under a forged identity: {session}"
        );
        assert_ne!(session["visitor_token"], json!(token));
    }
    // The real customer's history is still there for them.
    let again = shop
        .session(json!({"identity": shop.identity("u-1"), "visitor_token": token}))
        .await;
    assert_eq!(ids(&again), vec![conversation]);
}

#[tokio::test]
async fn a_second_device_sees_the_customers_history_and_can_resume_it() {
    let shop = shop().await;
    let laptop = shop
        .session(json!({"identity": shop.identity("u-7")}))
        .await;
    let laptop_token = laptop["visitor_token"].as_str().unwrap().to_string();
    let conversation = shop.chat(&laptop_token, "My order 1042 is late").await;

    let phone = shop
        .session(json!({"identity": shop.identity("u-7")}))
        .await;
    assert_eq!(phone["verified"], true);
    let phone_token = phone["visitor_token"].as_str().unwrap().to_string();
    assert_ne!(phone_token, laptop_token, "each device has its own token");
    assert_eq!(ids(&phone), vec![conversation.clone()]);
    // The phone reads the conversation over the socket too.
    let mut socket = shop
        .app
        .visitor_with_token(&shop.site_key, &phone_token)
        .await;
    socket
        .send(json!({"type": "resume", "conversation_id": conversation, "after_seq": 0}))
        .await;
    socket.expect_message("My order 1042 is late").await;
    socket.expect_type("resumed").await;
    // The laptop's token still works.
    let laptop_again = shop.session(json!({"visitor_token": laptop_token})).await;
    assert_eq!(laptop_again["verified"], true);
    assert_eq!(ids(&laptop_again), vec![conversation]);
}

#[tokio::test]
async fn an_anonymous_chat_follows_its_visitor_into_the_verified_customer() {
    let shop = shop().await;
    // Yesterday on the phone, logged in.
    let phone = shop
        .session(json!({"identity": shop.identity("u-9")}))
        .await;
    let earlier = shop
        .chat(phone["visitor_token"].as_str().unwrap(), "Earlier question")
        .await;
    // Today on the laptop: a chat before logging in, then the login.
    let anonymous = shop.session(json!({})).await;
    let token = anonymous["visitor_token"].as_str().unwrap().to_string();
    let today = shop.chat(&token, "Before I logged in").await;
    let verified = shop
        .session(json!({"identity": shop.identity("u-9"), "visitor_token": token}))
        .await;
    assert_eq!(verified["verified"], true);
    let mut both = ids(&verified);
    both.sort();
    let mut expected = vec![earlier, today];
    expected.sort();
    assert_eq!(both, expected, "{verified}");
    // The anonymous token ended with the merge; the audit says so.
    let reused = shop.session(json!({"visitor_token": token})).await;
    assert!(ids(&reused).is_empty());
    let audited = shop.app.store.audit_entries(50).await.unwrap();
    assert!(
        audited.iter().any(|(action, _)| action == "visitor.merged"),
        "{audited:?}"
    );
}

#[tokio::test]
async fn a_shared_browser_never_shows_one_customer_to_the_next() {
    let shop = shop().await;
    let ada = shop
        .session(json!({"identity": shop.identity("ada")}))
        .await;
    let ada_token = ada["visitor_token"].as_str().unwrap().to_string();
    let adas = shop.chat(&ada_token, "Ada's private question").await;

    // Ada leaves without logging out of the widget; Bob logs in on the
    // host site in the same browser (the widget still holds Ada's token).
    let bob = shop
        .session(json!({"identity": shop.identity("bob"), "visitor_token": ada_token}))
        .await;
    assert_eq!(bob["verified"], true);
    assert!(ids(&bob).is_empty(), "Bob sees nothing of Ada's: {bob}");
    assert_ne!(bob["visitor_token"], json!(ada_token));
    // Ada's token from this browser ended; her history is hers elsewhere.
    let stale = shop.session(json!({"visitor_token": ada_token})).await;
    assert!(ids(&stale).is_empty());
    let ada_elsewhere = shop
        .session(json!({"identity": shop.identity("ada")}))
        .await;
    assert_eq!(ids(&ada_elsewhere), vec![adas.clone()]);

    // Logout ends the token on the server: it opens nothing afterwards.
    let bob_token = bob["visitor_token"].as_str().unwrap().to_string();
    let response = careline::http_client(std::time::Duration::from_secs(10))
        .post(format!("{}/api/widget/v1/logout", shop.app.base))
        .header("Origin", SHOP_ORIGIN)
        .json(&json!({"site_key": shop.site_key, "visitor_token": bob_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let after = shop.session(json!({"visitor_token": bob_token})).await;
    assert_ne!(after["visitor_token"], json!(bob_token));
    assert_eq!(after["verified"], false);
    // Nor may another origin log anyone out.
    let foreign = careline::http_client(std::time::Duration::from_secs(10))
        .post(format!("{}/api/widget/v1/logout", shop.app.base))
        .header("Origin", "https://evil.example")
        .json(&json!({"site_key": shop.site_key, "visitor_token": ada_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
}

#[tokio::test]
async fn a_rotated_secret_verifies_for_its_grace_then_not() {
    let mut shop = shop().await;
    let old = shop.secret.clone();
    let new = make_secret(&mut shop.admin, &shop.site_id).await;
    assert_ne!(old, new);
    let signed = |secret: &str, user: &str| json!({"identity": {"user_id": user, "user_hash": signature(secret, user)}});
    assert_eq!(shop.session(signed(&new, "u-1")).await["verified"], true);
    assert_eq!(
        shop.session(signed(&old, "u-2")).await["verified"],
        true,
        "within the grace"
    );
    // The grace ends (moved into the past, as a day later).
    let site = shop.app.store.default_site().await.unwrap();
    let identity = shop
        .app
        .store
        .site_identity(site.id)
        .await
        .unwrap()
        .unwrap();
    shop.app
        .store
        .save_site_identity(
            site.id,
            &SiteIdentity {
                previous_until: Some(careline::store::now_ms() - 1),
                ..identity
            },
        )
        .await
        .unwrap();
    assert_eq!(shop.session(signed(&old, "u-3")).await["verified"], false);
    assert_eq!(shop.session(signed(&new, "u-3")).await["verified"], true);
}

#[tokio::test]
async fn requiring_verified_identity_takes_no_unsigned_name_or_email() {
    let mut shop = shop().await;
    let path = format!("/admin/sites/{}/identity", shop.site_id);
    shop.admin.get(&path).await;
    let saved = shop
        .admin
        .submit(&path, &[("require_verified", "on")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let session = shop
        .session(json!({"name": "Admin Person", "email": "ceo@shop.example"}))
        .await;
    assert_eq!(session["verified"], false);
    let visitor: careline::model::VisitorId =
        session["visitor_id"].as_str().unwrap().parse().unwrap();
    let stored = shop.app.store.visitor(visitor).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.email.as_str()), ("", ""));
    // A signed one is taken, with what the site vouches for.
    let signed = shop
        .session(json!({"identity": shop.identity("u-5")}))
        .await;
    let visitor: careline::model::VisitorId =
        signed["visitor_id"].as_str().unwrap().parse().unwrap();
    let stored = shop.app.store.visitor(visitor).await.unwrap().unwrap();
    assert_eq!(stored.email, "grace@example.com");
}

#[tokio::test]
async fn the_secret_is_shown_once_and_only_to_admins() {
    let mut shop = shop().await;
    let path = format!("/admin/sites/{}/identity", shop.site_id);
    let page = shop.admin.get(&path).await;
    assert!(!page.contains(&shop.secret), "never shown again");
    assert!(page.contains("A secret is set"));
    let stored = shop
        .app
        .store
        .site_identity(shop.app.store.default_site().await.unwrap().id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.secret.contains(&shop.secret), "sealed at rest");
    let mut agent = shop
        .app
        .agent(&mut shop.admin, "Alan", "alan@example.com")
        .await;
    assert_ne!(agent.get(&path).await.status, 200);
}

#[tokio::test]
async fn agents_see_whether_the_customers_email_is_proven() {
    let mut shop = shop().await;
    let alan = shop
        .app
        .agent(&mut shop.admin, "Alan", "alan@example.com")
        .await;
    let mut console = shop.app.agent_socket(&alan).await;
    console.go_online().await;
    let seen = |token: String, text: &'static str| {
        let shop = &shop;
        async move {
            let mut visitor = shop.app.visitor_with_token(&shop.site_key, &token).await;
            visitor
                .send(json!({"type": "start", "client_msg_id": text, "body": text}))
                .await;
            let id = visitor.expect_type("conversation").await["id"]
                .as_str()
                .unwrap()
                .to_string();
            visitor
                .send(json!({"type": "handoff", "conversation_id": id}))
                .await;
            (visitor, id)
        }
    };
    let verified = shop
        .session(json!({"identity": shop.identity("u-1")}))
        .await;
    let (_v1, signed_chat) =
        seen(verified["visitor_token"].as_str().unwrap().into(), "signed").await;
    let frame = console
        .expect(|f| {
            f["type"] == "conversation"
                && f["id"] == json!(signed_chat)
                && f["customer"].is_object()
        })
        .await;
    assert_eq!(frame["customer"]["email"], "grace@example.com", "{frame}");
    assert_eq!(frame["customer"]["verified"], true, "{frame}");

    let typed = shop
        .session(json!({"name": "Mallory", "email": "grace@example.com"}))
        .await;
    let (_v2, typed_chat) = seen(typed["visitor_token"].as_str().unwrap().into(), "typed").await;
    let frame = console
        .expect(|f| {
            f["type"] == "conversation" && f["id"] == json!(typed_chat) && f["customer"].is_object()
        })
        .await;
    assert_eq!(frame["customer"]["email"], "grace@example.com", "{frame}");
    assert_eq!(
        frame["customer"]["verified"], false,
        "the same address, typed: {frame}"
    );
}

#[tokio::test]
async fn a_customers_history_comes_a_page_at_a_time_and_only_to_them() {
    let shop = shop().await;
    let first = shop
        .session(json!({"identity": shop.identity("u-h")}))
        .await;
    let token = first["visitor_token"].as_str().unwrap().to_string();
    let mut made = Vec::new();
    for _ in 0..23 {
        let site = shop.app.store.default_site().await.unwrap();
        let visitor: careline::model::VisitorId =
            first["visitor_id"].as_str().unwrap().parse().unwrap();
        let c = shop
            .app
            .store
            .create_conversation(site.id, visitor)
            .await
            .unwrap();
        made.push(c.id.to_string());
    }
    made.reverse(); // newest first
    let again = shop.session(json!({"visitor_token": token})).await;
    assert_eq!(ids(&again), made[..20].to_vec());
    let page = |token: String, before: String| {
        let shop = &shop;
        async move {
            careline::http_client(std::time::Duration::from_secs(10))
                .get(format!(
                    "{}/api/widget/v1/conversations?site={}&before={before}",
                    shop.app.base, shop.site_key
                ))
                .header("Origin", SHOP_ORIGIN)
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
        }
    };
    let older = page(token.clone(), made[19].clone()).await;
    assert_eq!(older.status(), 200);
    let older: Value = older.json().await.unwrap();
    assert_eq!(ids(&older), made[20..].to_vec());
    assert_eq!(older["more"], false);
    let first_page: Value = page(token.clone(), String::new())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ids(&first_page),
        made[..20].to_vec(),
        "no cursor: the newest page"
    );
    assert_eq!(first_page["more"], true);
    // Someone else's token sees none of them; no token, a bad cursor and a
    // foreign origin are refused.
    let stranger = shop.session(json!({})).await;
    let theirs: Value = page(
        stranger["visitor_token"].as_str().unwrap().into(),
        made[19].clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(ids(&theirs).is_empty(), "{theirs}");
    assert_eq!(
        page("not-a-token".into(), made[0].clone()).await.status(),
        401
    );
    assert_eq!(page(token.clone(), "abc".into()).await.status(), 422);
    let foreign = careline::http_client(std::time::Duration::from_secs(10))
        .get(format!(
            "{}/api/widget/v1/conversations?site={}",
            shop.app.base, shop.site_key
        ))
        .header("Origin", "https://evil.example")
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
}
