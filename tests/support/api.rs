//! The JSON API as an integration calls it: a personal token made on the
//! account page, and requests that carry it.

use serde_json::Value;

use super::{Browser, TestApp};

/// The token the page shows once after "Make the token".
pub async fn make_token(browser: &mut Browser, name: &str, scope: &str) -> String {
    browser.get("/account/tokens").await.expect_status(200);
    let page = browser
        .submit(
            "/account/tokens",
            &[("name", name), ("scope", scope), ("days", "30")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let start = page
        .body
        .find("<pre><code>clt_")
        .expect("the token is shown once")
        + "<pre><code>".len();
    page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// A request without a body: the status and the answer.
pub async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = careline::http_client(std::time::Duration::from_secs(10))
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A request with a JSON body and, when `key`, an `Idempotency-Key`: the
/// status, the answer, and whether it was a replay.
pub async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value, bool) {
    let mut request = careline::http_client(std::time::Duration::from_secs(10))
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

/// A GET and the page after it: the status, the answer and the path in its
/// `Link: <…>; rel="next"`, if any.
pub async fn get_paged(app: &TestApp, token: &str, path: &str) -> (u16, Value, Option<String>) {
    let response = careline::http_client(std::time::Duration::from_secs(10))
        .get(format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let next = response
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_string())
        .map(|l| {
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        });
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null), next)
}
