//! A small browser: keeps cookies, does not follow redirects (tests assert
//! them), and remembers the CSRF token of the last page so forms can be
//! submitted as a person would.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

pub struct Browser {
    pub base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub csrf: Option<String>,
    /// Extra headers sent with every request (e.g. a spoofed X-Forwarded-For).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub content_type: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub fn expect_status(self, status: u16) -> Page {
        assert_eq!(
            self.status, status,
            "unexpected status; body:\n{}",
            self.body
        );
        self
    }

    pub fn expect_redirect(self, to: &str) -> Page {
        assert!(
            matches!(self.status, 302 | 303 | 307),
            "expected a redirect to {to}, got {}; body:\n{}",
            self.status,
            self.body
        );
        assert_eq!(self.location.as_deref(), Some(to));
        self
    }

    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The value of the first `name="csrf" value="…"` hidden field.
fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")?;
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest.split('"')
        .next()
        .map(str::to_string)
        .filter(|t| !t.is_empty())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: {
                careline::install_tls();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client builds")
            },
            cookies: BTreeMap::new(),
            csrf: None,
            headers: Vec::new(),
        }
    }

    /// The `Cookie` header this browser sends (e.g. for a console socket).
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header(COOKIE, self.cookie_header());
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.send().await.expect("request is answered");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let removed = cookie.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if removed {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
        let headers = response.headers().clone();
        let body = response.text().await.expect("body reads");
        if let Some(token) = csrf_in(&body) {
            self.csrf = Some(token);
        }
        Page {
            status,
            body,
            location,
            set_cookies,
            content_type,
            headers,
        }
    }

    /// The CSRF token of the last page with a form.
    pub fn csrf(&self) -> Option<String> {
        self.csrf.clone()
    }

    /// Uploads `bytes` as a page script does: raw body, the page's CSRF
    /// token in `X-CSRF-Token` (unless `csrf` is false).
    pub async fn upload(&mut self, path: &str, bytes: Vec<u8>, csrf: bool) -> Page {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(bytes);
        if csrf {
            let token = self
                .csrf
                .clone()
                .expect("a page with a form was loaded first");
            request = request.header("x-csrf-token", token);
        }
        self.send(request).await
    }

    /// A JSON request as a page's script makes it: the session cookie, and
    /// the page's CSRF token in `X-CSRF-Token` when `csrf`.
    pub async fn json_request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
        csrf: bool,
    ) -> Page {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(body);
        if csrf {
            let token = self
                .csrf
                .clone()
                .expect("a page with a form was loaded first");
            request = request.header("x-csrf-token", token);
        }
        self.send(request).await
    }

    /// The raw bytes at `path` (a download), with status and headers.
    pub async fn download(&mut self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form with the CSRF token of the last page seen.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was loaded first");
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        self.send(request).await
    }

    pub async fn login(&mut self, email: &str, password: &str) {
        self.get("/login").await.expect_status(200);
        let page = self
            .submit("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(page.status, 303, "login failed for {email}: {}", page.body);
    }
}
