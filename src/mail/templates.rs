//! The emails Careline sends: subject, plain text and HTML from a template
//! name and its data. HTML is built with maud, so every value is escaped.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Email;

#[derive(Debug, thiserror::Error)]
#[error("cannot render email template `{0}`: {1}")]
pub struct TemplateError(pub String, pub &'static str);

fn text(payload: &Value, key: &str) -> String {
    match &payload[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// ` “value”` for a field that is there, nothing for one that is not (the
/// outbox leaves out what a visitor chose when the address is unverified).
fn quoted(payload: &Value, key: &str) -> String {
    match text(payload, key) {
        value if value.is_empty() => String::new(),
        value => format!(" \u{201c}{value}\u{201d}"),
    }
}

/// The customer an agent's email is about, by name ("A customer" without one).
fn customer_of(payload: &Value) -> String {
    match text(payload, "customer") {
        name if name.trim().is_empty() => "A customer".into(),
        name => name,
    }
}

fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1d2330; max-width: 36rem; margin: 0 auto; padding: 1rem" {
                (body)
                hr;
                p style="color: #5b6475; font-size: 0.85rem" { "Careline · Customer Care Registry" }
            }
        }
    }
    .into_string()
}

fn button(href: &str, label: &str) -> Markup {
    html! {
        p {
            a href=(href) style="display: inline-block; background: #1f5fc4; color: #fff; padding: 0.6rem 1rem; border-radius: 6px; text-decoration: none" { (label) }
        }
        p style="color: #5b6475; font-size: 0.85rem" { "Or open this address: " (href) }
    }
}

/// Renders `template` with `payload`; links point at `public_url`.
pub fn render(
    template: &str,
    payload: &Value,
    to: &str,
    public_url: &str,
) -> Result<Email, TemplateError> {
    let name = text(payload, "name");
    let greeting = if name.trim().is_empty() {
        "Hello,".to_string()
    } else {
        format!("Hello {name},")
    };
    let number = text(payload, "ticket_number");
    let ticket_link = format!("{public_url}/tickets/{number}");
    let missing = |what: &'static str| TemplateError(template.to_string(), what);
    let (subject, lines, link): (String, Vec<String>, Option<(String, &str)>) = match template {
        "verify_email" => {
            let link = text(payload, "link");
            if link.is_empty() {
                return Err(missing("no link"));
            }
            (
                "Confirm your email address".into(),
                vec![format!(
                    "Please confirm that this address is yours. The link works once, for {} hours.",
                    text(payload, "hours")
                )],
                Some((link, "Confirm my email")),
            )
        }
        "password_reset" => {
            let link = text(payload, "link");
            if link.is_empty() {
                return Err(missing("no link"));
            }
            (
                "Choose a new password".into(),
                vec![
                    format!(
                        "Someone asked to reset the password of this account. The link works once, for {} hour(s).",
                        text(payload, "hours")
                    ),
                    "If it was not you, ignore this email: your password stays as it is.".into(),
                ],
                Some((link, "Choose a new password")),
            )
        }
        "agent_invitation" => {
            let link = text(payload, "link");
            if link.is_empty() {
                return Err(missing("no link"));
            }
            (
                "You are invited to the support team".into(),
                vec![format!(
                    "You have an agent account on Careline. Choose your password to start; the link works once, for {} hours.",
                    text(payload, "hours")
                )],
                Some((link, "Choose my password")),
            )
        }
        "ticket_opened" => {
            if number.is_empty() {
                return Err(missing("no ticket number"));
            }
            (
                format!("We received your request #{number}"),
                vec![
                    format!(
                        "Your request #{number}{} is with our team.",
                        quoted(payload, "subject")
                    ),
                    "We will reply in the ticket and let you know by email.".into(),
                ],
                Some((ticket_link, "Follow your request")),
            )
        }
        "agent_reply" => (
            if number.is_empty() {
                "You have a reply".into()
            } else {
                format!("New reply on your request #{number}")
            },
            vec![
                format!("{} wrote:", text(payload, "agent")),
                text(payload, "body"),
            ],
            (!number.is_empty()).then_some((ticket_link, "Read and reply")),
        ),
        "ticket_resolved" => {
            if number.is_empty() {
                return Err(missing("no ticket number"));
            }
            (
                format!("Your request #{number} is resolved"),
                vec![
                    format!("We marked your request #{number}{} as resolved.", quoted(payload, "subject")),
                    "How did we do? Your rating (1 to 5) helps us get better. If something is still wrong, just reply in the ticket.".into(),
                ],
                Some((format!("{ticket_link}#rate"), "Rate our help")),
            )
        }
        // Agents' emails about their own work (domain::notifications).
        "conversation_assigned" => {
            let id = text(payload, "conversation_id");
            if id.is_empty() {
                return Err(missing("no conversation"));
            }
            let shown = if number.is_empty() { id } else { number };
            let customer = customer_of(payload);
            let by = text(payload, "by");
            (
                format!("Conversation #{shown} assigned to you"),
                vec![if by.is_empty() {
                    format!(
                        "The conversation #{shown} with {customer} was assigned to you automatically."
                    )
                } else {
                    format!("{by} assigned the conversation #{shown} with {customer} to you.")
                }],
                Some((format!("{public_url}/console/chat"), "Open the live chat")),
            )
        }
        "ticket_assigned" => {
            if number.is_empty() {
                return Err(missing("no ticket number"));
            }
            let customer = customer_of(payload);
            let by = text(payload, "by");
            let by = if by.is_empty() {
                "Someone".to_string()
            } else {
                by
            };
            (
                format!("Ticket #{number} assigned to you"),
                vec![format!(
                    "{by} assigned the ticket #{number}{} from {customer} to you.",
                    quoted(payload, "ticket_subject")
                )],
                Some((
                    format!("{public_url}/console/tickets/{number}"),
                    "Open the ticket",
                )),
            )
        }
        "customer_wrote" => {
            let customer = customer_of(payload);
            let about = if number.is_empty() {
                String::new()
            } else {
                format!(" (#{number})")
            };
            (
                format!("{customer} wrote while you were away"),
                vec![
                    format!("{customer} wrote in a conversation of yours{about}:"),
                    text(payload, "body"),
                ],
                Some((
                    format!("{public_url}/console/chat"),
                    "Answer in the live chat",
                )),
            )
        }
        "webhook_disabled" => {
            let link = text(payload, "link");
            if link.is_empty() {
                return Err(missing("no link"));
            }
            (
                "A webhook endpoint was turned off".into(),
                vec![
                    format!(
                        "Careline turned off the webhook endpoint {} after {} failed deliveries in a row.",
                        text(payload, "url"),
                        text(payload, "failures")
                    ),
                    format!("The last failure: {}", text(payload, "error")),
                    "Its events are kept. Fix the receiver, then turn the endpoint back on: what waited is delivered, oldest first.".into(),
                ],
                Some((link, "Open the endpoint")),
            )
        }
        _ => return Err(missing("unknown template")),
    };
    let mut text_body = format!("{greeting}\n\n{}\n", lines.join("\n\n"));
    if let Some((href, _)) = &link {
        text_body.push_str(&format!("\n{href}\n"));
    }
    text_body.push_str("\n-- \nCareline · Customer Care Registry\n");
    let html_body = layout(
        &subject,
        html! {
            p { (greeting) }
            @for line in &lines {
                p style="white-space: pre-wrap" { (line) }
            }
            @if let Some((href, label)) = &link { (button(href, label)) }
        },
    );
    Ok(Email {
        to: to.to_string(),
        subject,
        text: text_body,
        html: html_body,
        threading: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_renders_text_and_escaped_html() {
        let evil = "<script>alert(1)</script>";
        let cases = [
            (
                "verify_email",
                json!({"name": evil, "link": "https://c.example/verify?token=t", "hours": 72}),
            ),
            (
                "password_reset",
                json!({"name": "Ada", "link": "https://c.example/password?token=t", "hours": 1}),
            ),
            (
                "agent_invitation",
                json!({"name": "Ada", "link": "https://c.example/password?token=t", "hours": 72}),
            ),
            (
                "ticket_opened",
                json!({"name": "Ada", "ticket_number": 1001, "subject": evil}),
            ),
            (
                "agent_reply",
                json!({"name": "Ada", "ticket_number": 1001, "agent": "Alan", "body": evil}),
            ),
            (
                "ticket_resolved",
                json!({"name": "Ada", "ticket_number": 1001, "subject": "Printer"}),
            ),
            (
                "conversation_assigned",
                json!({"name": "Alan", "conversation_id": 4, "ticket_number": 1001, "customer": evil, "by": evil}),
            ),
            (
                "ticket_assigned",
                json!({"name": "Alan", "conversation_id": 4, "ticket_number": 1001, "ticket_subject": evil, "customer": evil, "by": "Bea"}),
            ),
            (
                "customer_wrote",
                json!({"name": "Alan", "conversation_id": 4, "ticket_number": 1001, "customer": evil, "body": evil}),
            ),
            (
                "webhook_disabled",
                json!({"url": evil, "failures": 15, "error": evil, "link": "https://c.example/admin/webhooks/1"}),
            ),
        ];
        for (template, payload) in cases {
            let email =
                render(template, &payload, "ada@example.com", "https://c.example").expect(template);
            assert!(!email.subject.is_empty());
            assert!(
                !email.html.contains("<script>"),
                "{template}: {}",
                email.html
            );
            assert!(email.text.starts_with("Hello"), "{template}");
        }
        let resolved = render(
            "ticket_resolved",
            &json!({"ticket_number": 7, "subject": "x"}),
            "a@b.c",
            "https://c.example",
        )
        .unwrap();
        assert!(resolved.text.contains("https://c.example/tickets/7#rate"));
        let by_routing = render(
            "conversation_assigned",
            &json!({"name": "Alan", "conversation_id": 4, "customer": "", "by": ""}),
            "a@b.c",
            "https://c.example",
        )
        .unwrap();
        assert_eq!(by_routing.subject, "Conversation #4 assigned to you");
        assert!(by_routing.text.contains("Hello Alan,"));
        assert!(
            by_routing
                .text
                .contains("with A customer was assigned to you automatically")
        );
        assert!(by_routing.text.contains("https://c.example/console/chat"));
        let wrote = render(
            "customer_wrote",
            &json!({"conversation_id": 4, "ticket_number": 9, "customer": "Grace", "body": "Hello?"}),
            "a@b.c",
            "https://c.example",
        )
        .unwrap();
        assert_eq!(wrote.subject, "Grace wrote while you were away");
        assert!(wrote.text.contains("Hello?") && wrote.text.contains("(#9)"));
        let ticket = render(
            "ticket_assigned",
            &json!({"ticket_number": 9, "ticket_subject": "Printer", "customer": "Grace", "by": "Bea"}),
            "a@b.c",
            "https://c.example",
        )
        .unwrap();
        assert_eq!(ticket.subject, "Ticket #9 assigned to you");
        assert!(
            ticket
                .text
                .contains("Bea assigned the ticket #9 \u{201c}Printer\u{201d} from Grace to you.")
        );
        assert!(ticket.text.contains("https://c.example/console/tickets/9"));
        assert!(render("nonsense", &json!({}), "a@b.c", "https://c.example").is_err());
        assert!(render("ticket_assigned", &json!({}), "a@b.c", "https://c.example").is_err());
        assert!(
            render(
                "conversation_assigned",
                &json!({}),
                "a@b.c",
                "https://c.example"
            )
            .is_err()
        );
        assert!(render("verify_email", &json!({}), "a@b.c", "https://c.example").is_err());
    }
}
