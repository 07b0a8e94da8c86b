//! The API reference (`/api/docs`): the OpenAPI document read as a page,
//! rendered here from the very document `/api/openapi.json` serves, so the
//! two cannot disagree. Public, as the document is; no script.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::layout::page;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::session::MaybeUser;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub async fn show(State(_): State<AppState>, maybe: MaybeUser, csrf: CsrfToken) -> Response {
    let doc = serde_json::to_value(crate::web::api::openapi::document())
        .expect("the document always serializes");
    let body = page(
        "API reference",
        maybe.user.as_ref(),
        &csrf.0,
        reference(&doc),
    );
    ([(header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn reference(doc: &Value) -> Markup {
    let schemes = &doc["components"]["securitySchemes"];
    html! {
        h1 { "API reference" }
        p.lead { (text(&doc["info"]["description"])) }
        p {
            "The same as an OpenAPI " (text(&doc["openapi"])) " document: "
            a href="/api/openapi.json" { code { "/api/openapi.json" } }
            " (for code generators, Postman, schemathesis). Tokens are made under "
            a href="/account/tokens" { "Your account → API tokens" } "."
        }
        h2 { "Authentication" }
        dl {
            @if let Some(schemes) = schemes.as_object() {
                @for (name, scheme) in schemes {
                    dt { code { (name) } " — " (scheme_kind(scheme)) }
                    dd { (text(&scheme["description"])) }
                }
            }
        }
        p.hint {
            "What a route needs: the token scope (" code { "read" } ", " code { "write" } ", "
            code { "admin" } "); where it says " code { "staff" } ", an agent or admin, and "
            "where it says " code { "admins" } ", an admin (anyone else gets 404, as on the pages)."
        }
        h2 { "Routes" }
        @for (path, item) in entries(&doc["paths"]) {
            @for method in METHODS {
                @if let Some(op) = item.get(method) {
                    (operation(method, path, op))
                }
            }
        }
        h2 { "Shapes" }
        @for (name, schema) in entries(&doc["components"]["schemas"]) {
            (shape(name, schema))
        }
    }
}

fn operation(method: &str, path: &str, op: &Value) -> Markup {
    let id = format!("{method}-{path}").replace(['/', '{', '}'], "-");
    html! {
        section.card id=(id) {
            h3 { code { (method.to_uppercase()) " " (path) } " — " (text(&op["summary"])) }
            @if let Some(description) = op["description"].as_str() { p { (description) } }
            p { strong { "Needs: " } (needs(&op["security"])) }
            @if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                table {
                    caption { "Parameters" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "In" } th scope="col" { "Type" } th scope="col" { "Description" } } }
                    tbody {
                        @for p in params {
                            tr {
                                td { code { (text(&p["name"])) } @if p["required"] == true { " (required)" } }
                                td { (text(&p["in"])) }
                                td { (kind(&p["schema"])) }
                                td { (text(&p["description"])) }
                            }
                        }
                    }
                }
            }
            @for (content_type, media) in entries(&op["requestBody"]["content"]) {
                p { strong { "Body " } "(" code { (content_type) } "): " (kind(&media["schema"])) }
            }
            table {
                caption { "Answers" }
                thead { tr { th scope="col" { "Status" } th scope="col" { "When" } th scope="col" { "Shape" } } }
                tbody {
                    @for (status, answer) in entries(&op["responses"]) {
                        tr {
                            td { (status) }
                            td { (text(&answer["description"])) }
                            td {
                                @for (_, media) in entries(&answer["content"]) { (kind(&media["schema"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Who may call: each requirement is one way in, its schemes all needed.
fn needs(security: &Value) -> Markup {
    let ways: Vec<String> = security
        .as_array()
        .into_iter()
        .flatten()
        .map(|way| {
            entries(way)
                .map(|(scheme, roles)| {
                    let roles: Vec<&str> = roles
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if roles.is_empty() {
                        scheme.to_string()
                    } else {
                        format!("{scheme} ({})", roles.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    if ways.is_empty() {
        html! { "nothing (public)" }
    } else {
        html! { (ways.join("; or ")) }
    }
}

fn shape(name: &str, schema: &Value) -> Markup {
    html! {
        section.card id={ "schema-" (name) } {
            h3 { code { (name) } }
            @if let Some(description) = schema["description"].as_str() { p { (description) } }
            @if let Some(props) = schema["properties"].as_object() {
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Type" } th scope="col" { "Description" } } }
                    tbody {
                        @for (field, prop) in props {
                            tr {
                                td {
                                    code { (field) }
                                    @if required(schema, field) { " (always)" }
                                }
                                td { (kind(prop)) }
                                td { (text(&prop["description"])) }
                            }
                        }
                    }
                }
            } @else {
                p { (kind(schema)) }
            }
        }
    }
}

fn required(schema: &Value, field: &str) -> bool {
    schema["required"]
        .as_array()
        .is_some_and(|r| r.iter().any(|f| f == field))
}

/// A schema in a few words, with links to the shapes it names.
fn kind(schema: &Value) -> Markup {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or(target);
        return html! { a href={ "#schema-" (name) } { code { (name) } } };
    }
    if let Some(values) = schema["enum"].as_array() {
        let words: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        return html! { "one of " code { (words.join(" | ")) } };
    }
    for (key, joiner) in [("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")] {
        if let Some(parts) = schema[key].as_array() {
            return html! {
                @for (i, part) in parts.iter().enumerate() {
                    @if i > 0 { (joiner) }
                    (kind(part))
                }
            };
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    html! {
        @for (i, t) in types.iter().enumerate() {
            @if i > 0 { " or " }
            @if *t == "array" { "array of " (kind(&schema["items"])) } @else { (t) }
        }
        @if let Some(format) = schema["format"].as_str() { " (" (format) ")" }
    }
}

fn scheme_kind(scheme: &Value) -> String {
    match (scheme["type"].as_str(), scheme["in"].as_str()) {
        (Some("http"), _) => format!("HTTP {}", text_of(&scheme["scheme"])),
        (Some("apiKey"), Some(place)) => format!("{place} {}", text_of(&scheme["name"])),
        (other, _) => other.unwrap_or("").to_string(),
    }
}

/// The members of a JSON object, in the document's order (none for
/// anything else).
fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or("").to_string()
}

/// A description as the document writes it: `backticks` mark code (the
/// only markup the descriptions use); everything is escaped.
fn text(value: &Value) -> Markup {
    let text = text_of(value);
    // An unpaired backtick is a character, not markup.
    if text.matches('`').count() % 2 == 1 {
        return html! { (text) };
    }
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_and_everything_is_escaped() {
        let shown = text(&Value::from("Send `X-CSRF-Token` <b>now</b>")).into_string();
        assert_eq!(
            shown,
            "Send <code>X-CSRF-Token</code> &lt;b&gt;now&lt;/b&gt;"
        );
        let odd = text(&Value::from("a `b <i>")).into_string();
        assert_eq!(odd, "a `b &lt;i&gt;");
    }
}
