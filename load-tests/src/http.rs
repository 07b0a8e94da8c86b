//! The two HTTP steps before a socket: the widget's session bootstrap and
//! an agent's login form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Target;

/// One HTTP client (and its connection pool) per source address, shared.
pub fn client(local: Option<IpAddr>) -> reqwest::Client {
    static CLIENTS: OnceLock<Mutex<HashMap<Option<IpAddr>, reqwest::Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(|| {
        // reqwest is built without a default TLS provider (as in the
        // server); loopback is plain HTTP, but a client needs one anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Mutex::new(HashMap::new())
    });
    clients
        .lock()
        .expect("client cache lock")
        .entry(local)
        .or_insert_with(|| {
            reqwest::Client::builder()
                .local_address(local)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds")
        })
        .clone()
}

/// `POST /api/widget/v1/session` as widget.js does it: a fresh visitor token.
pub async fn visitor_token(http: &reqwest::Client, target: &Target) -> anyhow::Result<String> {
    let response = http
        .post(target.http("/api/widget/v1/session"))
        .header("Origin", &target.origin)
        .json(&json!({"site_key": target.site_key}))
        .send()
        .await
        .context("widget session request")?;
    let status = response.status();
    let body: Value = response.json().await.context("widget session body")?;
    if !status.is_success() {
        bail!("widget session refused with {status}: {body}");
    }
    body["visitor_token"]
        .as_str()
        .map(str::to_string)
        .context("no visitor_token in the widget session")
}

/// Logs an agent in through the login form; returns the `Cookie` header
/// value for the console socket.
pub async fn agent_cookie(
    target: &Target,
    email: &str,
    password: &str,
    local: Option<IpAddr>,
) -> anyhow::Result<String> {
    let http = client(local);
    let page = http.get(target.http("/login")).send().await?;
    let pre = cookies(&page);
    let body = page.text().await?;
    let csrf = hidden_csrf(&body).context("no csrf field on /login")?;
    let response = http
        .post(target.http("/login"))
        .header("Cookie", &pre)
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await?;
    let status = response.status();
    let session = cookies(&response);
    if !status.is_redirection() || !session.contains("careline_session=") {
        bail!("login as {email} failed with {status}");
    }
    Ok(session)
}

/// `name=value` pairs of every Set-Cookie, joined for a Cookie header.
fn cookies(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn hidden_csrf(body: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let rest = &body[body.find(marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_csrf_field() {
        let page = r#"<form><input type="hidden" name="csrf" value="abc.def"></form>"#;
        assert_eq!(super::hidden_csrf(page).as_deref(), Some("abc.def"));
        assert_eq!(super::hidden_csrf("<form></form>"), None);
    }
}
