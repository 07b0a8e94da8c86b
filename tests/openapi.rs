//! The API's OpenAPI document, read from a real running server: it is
//! OpenAPI 3.1 JSON, it names every `/api/v1` route the router has (a new
//! route without its annotation fails here), its references resolve, and
//! the security it states is what the server does: a customer is refused
//! on staff routes, a read token on writes, an agent's token on admin
//! routes, a session without its CSRF token on changes.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::{Browser, Database, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `(METHOD, path)` of `/api/v1` that `src/web` registers with
/// `.route("…", get(…).post(…))`, read from the source as written.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web"),
        &mut files,
    );
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let call = &rest[..closing_paren(rest)];
            let Some(path) = call.trim_start().strip_prefix('"') else {
                continue;
            };
            let path = &path[..path.find('"').unwrap()];
            if !path.starts_with("/api/v1/") {
                continue;
            }
            for method in METHODS {
                if calls(call, method) {
                    routes.insert((method.to_uppercase(), path.to_string()));
                }
            }
        }
    }
    routes
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where the call whose arguments `text` starts with ends.
fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Whether `call` calls `method(` (`get(list)`, `routing::patch(update)`).
fn calls(call: &str, method: &str) -> bool {
    call.match_indices(&format!("{method}(")).any(|(i, _)| {
        call[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

async fn fetch_document(app: &TestApp) -> Value {
    let response = careline::http_client(std::time::Duration::from_secs(10))
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public"),
        "the document is the same for everyone: {headers:?}"
    );
    serde_json::from_str(&response.text().await.unwrap()).expect("the document is JSON")
}

/// Every operation of the document: (METHOD, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                found.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    found
}

/// Every `$ref` anywhere in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_every_route_of_the_router() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let doc = fetch_document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Careline API");
    assert!(doc["info"]["version"].is_string());

    let in_source = routes_in_source();
    assert!(
        in_source.len() >= 12,
        "the source scan finds the routes: {in_source:?}"
    );
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let missing: Vec<_> = in_source.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes with no #[utoipa::path] in the document (annotate the handler, list it in its \
         file's `Doc`, and that `Doc` in web/api/openapi.rs PARTS): {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&in_source).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");

    // The scan is the router: anonymous, every route is there and says 401.
    let client = careline::http_client(std::time::Duration::from_secs(10));
    for (method, path) in &in_source {
        let url = format!(
            "{}{}",
            app.base,
            path.replace("{number}", "1").replace("{id}", "1")
        );
        let response = client
            .request(method.parse().unwrap(), url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
    }

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} twice"
        );
        assert!(op["summary"].is_string(), "{method} {path} has a summary");
        let security = op["security"]
            .as_array()
            .expect("every route says who may call");
        assert!(!security.is_empty(), "{method} {path}");
        for code in ["200", "201"] {
            if let Some(ok) = op["responses"].get(code) {
                assert!(ok["content"]["application/json"]["schema"].is_object());
            }
        }
        assert!(op["responses"].get("401").is_some(), "{method} {path}: 401");
        if let Some(params) = op["parameters"].as_array() {
            for name in path
                .split('{')
                .skip(1)
                .map(|p| p.split('}').next().unwrap())
            {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{method} {path}: path parameter {name}"
                );
            }
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    for target in targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(schemas.contains_key(name), "{target} resolves");
    }
    // Every refusal has the one error shape.
    let error = &schemas["ErrorBody"];
    assert_eq!(error["required"][0], "error");

    // The readable reference renders the same document.
    let mut visitor = app.browser();
    let page = visitor.get("/api/docs").await.expect_status(200);
    for (method, path) in &in_source {
        assert!(
            page.contains(&format!("{method} {path}")),
            "{method} {path} on the page"
        );
    }
    assert!(page.contains("id=\"schema-Ticket\"") || page.contains("id=\"schema-ApiTicket\""));
}

/// The roles one way in (`"token"` or `"session"`) of `op` names.
fn roles(op: &Value, scheme: &str) -> Option<Vec<String>> {
    op["security"].as_array()?.iter().find_map(|way| {
        way.get(scheme).map(|roles| {
            roles
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        })
    })
}

/// Whether the session way of `op` also needs the CSRF header.
fn session_needs_csrf(op: &Value) -> bool {
    op["security"]
        .as_array()
        .unwrap()
        .iter()
        .any(|way| way.get("session").is_some() && way.get("csrf").is_some())
}

/// The request `op` describes, with the document's own example body.
struct Call {
    method: reqwest::Method,
    path: String,
    body: Option<(String, Vec<u8>)>,
}

fn call_of(doc: &Value, method: &str, path: &str, op: &Value, number: i64, id: i64) -> Call {
    let body = op["requestBody"]["content"].as_object().map(|content| {
        let (content_type, media) = content.iter().next().unwrap();
        let bytes = if content_type == "application/json" {
            let target = media["schema"]["$ref"].as_str().unwrap();
            let name = target.rsplit('/').next().unwrap();
            let example = &doc["components"]["schemas"][name]["example"];
            assert!(
                example.is_object(),
                "{method} {path}: {name} has an example"
            );
            serde_json::to_vec(example).unwrap()
        } else {
            b"plain words".to_vec()
        };
        (content_type.clone(), bytes)
    });
    Call {
        method: method.parse().unwrap(),
        path: path
            .replace("{number}", &number.to_string())
            .replace("{id}", &id.to_string()),
        body,
    }
}

async fn with_token(app: &TestApp, token: &str, call: &Call) -> u16 {
    let mut request = careline::http_client(std::time::Duration::from_secs(10))
        .request(call.method.clone(), format!("{}{}", app.base, call.path))
        .header("authorization", format!("Bearer {token}"));
    if let Some((content_type, bytes)) = &call.body {
        request = request
            .header("content-type", content_type)
            .body(bytes.clone());
    }
    request.send().await.unwrap().status().as_u16()
}

async fn with_session(browser: &mut Browser, call: &Call, csrf: bool) -> u16 {
    let cookie = browser.cookie_header();
    let token = browser.csrf();
    let mut request = careline::http_client(std::time::Duration::from_secs(10))
        .request(
            call.method.clone(),
            format!("{}{}", browser.base, call.path),
        )
        .header("cookie", cookie);
    if csrf {
        request = request.header("x-csrf-token", token.expect("a page with a form was seen"));
    }
    if let Some((content_type, bytes)) = &call.body {
        request = request
            .header("content-type", content_type)
            .body(bytes.clone());
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_security_the_document_states_is_what_the_server_does() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let doc = fetch_document(&app).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer jams"),
                ("description", "Every page"),
                ("priority", "normal"),
            ],
        )
        .await;
    let mine = grace.get("/api/v1/tickets").await.json();
    let number = mine[0]["number"].as_i64().expect("Grace's ticket");
    let conversation = app
        .store
        .ticket_by_number(careline::model::TicketNumber(number))
        .await
        .unwrap()
        .unwrap()
        .conversation_id
        .0;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let read = support::api::make_token(&mut alan, "reader", "read").await;
    let write = support::api::make_token(&mut alan, "writer", "write").await;
    let admin_token = support::api::make_token(&mut admin, "root", "admin").await;
    grace.get("/dashboard").await;

    let ops = operations(&doc);
    let mut checked_staff = 0;
    for (method, path, op) in &ops {
        let call = call_of(&doc, method, path, op, number, conversation);
        let token = roles(op, "token").expect("every route takes a token");
        let session = roles(op, "session").expect("every route takes the session");
        for role in token.iter().chain(&session) {
            assert!(
                ["read", "write", "admin", "staff", "admins"].contains(&role.as_str()),
                "{method} {path}: unknown role {role}"
            );
        }
        let scopes: Vec<_> = token
            .iter()
            .filter(|r| !["staff", "admins"].contains(&r.as_str()))
            .collect();
        assert_eq!(scopes.len(), 1, "{method} {path}: one token scope");
        let where_ = format!("{method} {path}");

        // Refusals first: they change nothing.
        if session.iter().any(|r| r == "staff" || r == "admins") {
            let status = with_session(&mut grace, &call, true).await;
            assert_eq!(status, 404, "{where_}: a customer on a staff route");
            checked_staff += 1;
        }
        if token.iter().any(|r| r == "admins") {
            assert_eq!(
                with_token(&app, &write, &call).await,
                404,
                "{where_}: an agent on an admins' route"
            );
        }
        match scopes[0].as_str() {
            "write" => {
                assert_eq!(
                    with_token(&app, &read, &call).await,
                    403,
                    "{where_}: read token"
                );
            }
            "admin" => {
                let status = with_token(&app, &write, &call).await;
                assert!(
                    matches!(status, 403 | 404),
                    "{where_}: agent token got {status}"
                );
            }
            _ => {}
        }
        if session_needs_csrf(op) {
            assert_eq!(
                with_session(&mut alan, &call, false).await,
                403,
                "{where_}: no CSRF"
            );
        } else {
            assert_ne!(method, "POST", "{where_}: a change without CSRF");
        }
    }
    assert!(
        checked_staff >= 8,
        "the staff routes were tried: {checked_staff}"
    );

    // And the callers it allows get past the door.
    for (method, path, op) in &ops {
        let call = call_of(&doc, method, path, op, number, conversation);
        let token = roles(op, "token").unwrap();
        let allowed = if token.iter().any(|r| r == "admin" || r == "admins") {
            &admin_token
        } else {
            &write
        };
        let status = with_token(&app, allowed, &call).await;
        assert!(
            !matches!(status, 401 | 403),
            "{method} {path}: an allowed token got {status}"
        );
    }
}
