//! The forms of a server-rendered page, read as a browser would submit
//! them: enough HTML parsing for what maud writes (double-quoted
//! attributes, `&amp; &lt; &gt; &quot;` escapes), no more.

/// One `<form method="post">`: where it goes and what a browser sends.
#[derive(Debug)]
pub struct Form {
    pub action: String,
    /// `multipart/form-data` (an upload): not a url-encoded form.
    pub multipart: bool,
    pub fields: Vec<(String, String)>,
}

/// Every POST form of `html`, with each field as a person would leave it
/// after filling in the empty ones with something plausible for its type:
/// unchecked boxes are not sent, a select sends its selected option (or
/// its first), a named submit button sends its value.
pub fn post_forms(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let open = &after[..open_end];
        let Some(close) = after.find("</form>") else {
            break;
        };
        let body = &after[open_end + 1..close];
        rest = &after[close + "</form>".len()..];
        if attr(open, "method").as_deref() != Some("post") {
            continue;
        }
        forms.push(Form {
            action: attr(open, "action").unwrap_or_default(),
            multipart: attr(open, "enctype").is_some_and(|e| e.contains("multipart")),
            fields: fields(body),
        });
    }
    forms
}

fn fields(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut button_sent = false;
    // Required radio groups with nothing checked: a person must pick one
    // (the browser will not send the form otherwise); they pick the first.
    let mut radios: Vec<(String, String, bool)> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let tag_text = &rest[start..];
        let Some(end) = tag_text.find('>') else { break };
        let tag = &tag_text[..end];
        let name = attr(tag, "name");
        if tag.starts_with("<input") {
            if let Some(name) = name {
                let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
                let value = attr(tag, "value").unwrap_or_default();
                match kind.as_str() {
                    "checkbox" | "radio" => {
                        let value = if value.is_empty() { "on".into() } else { value };
                        let checked = has_flag(tag, "checked");
                        if kind == "radio" && !radios.iter().any(|(n, _, _)| *n == name) {
                            radios.push((name.clone(), value.clone(), has_flag(tag, "required")));
                        }
                        if checked {
                            radios.retain(|(n, _, _)| *n != name);
                            out.push((name, value));
                        }
                    }
                    "file" | "reset" | "button" | "image" => {}
                    "submit" => {
                        if !button_sent {
                            out.push((name, value));
                            button_sent = true;
                        }
                    }
                    _ => {
                        let value = if value.is_empty() {
                            plausible(&kind, tag)
                        } else {
                            value
                        };
                        out.push((name, value));
                    }
                }
            }
        } else if tag.starts_with("<select") {
            let close = tag_text.find("</select>").unwrap_or(tag_text.len());
            if let Some(name) = name {
                let options: Vec<&str> = tag_text[..close].split("<option").skip(1).collect();
                let chosen = options
                    .iter()
                    .find(|o| has_flag(o.split('>').next().unwrap_or(""), "selected"))
                    .or(options.first());
                if let Some(option) = chosen {
                    let head = option.split('>').next().unwrap_or("");
                    let text = option
                        .split('>')
                        .nth(1)
                        .unwrap_or("")
                        .split('<')
                        .next()
                        .unwrap_or("");
                    out.push((name, attr(head, "value").unwrap_or_else(|| unescape(text))));
                }
            }
            rest = &tag_text[close..];
            continue;
        } else if tag.starts_with("<textarea") {
            let close = tag_text.find("</textarea>").unwrap_or(tag_text.len());
            if let Some(name) = name {
                let text = unescape(&tag_text[end + 1..close]);
                out.push((
                    name,
                    if text.is_empty() {
                        "Filled in by the test".into()
                    } else {
                        text
                    },
                ));
            }
            rest = &tag_text[close..];
            continue;
        } else if tag.starts_with("<button")
            && let Some(name) = name
            && !button_sent
            && attr(tag, "type").as_deref() != Some("button")
        {
            out.push((name, attr(tag, "value").unwrap_or_default()));
            button_sent = true;
        }
        rest = &tag_text[end..];
    }
    for (name, first, required) in radios {
        if required && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, first));
        }
    }
    out
}

/// What a person would type into an empty field of this type.
fn plausible(kind: &str, tag: &str) -> String {
    match kind {
        "email" => "someone@example.com".into(),
        "number" => attr(tag, "min").unwrap_or_else(|| "1".into()),
        "password" => "a long enough password 1".into(),
        "url" => "https://example.com".into(),
        "color" => "#123456".into(),
        "hidden" => String::new(),
        _ => "Filled in by the test".into(),
    }
}

/// The value of attribute `name` in an opening tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

/// A bare boolean attribute (`checked`, `selected`).
fn has_flag(tag: &str, name: &str) -> bool {
    tag.split([' ', '>'])
        .any(|word| word == name || word.starts_with(&format!("{name}=")))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
