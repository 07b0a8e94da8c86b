//! Email that comes in: a raw RFC 5322 message (SendGrid's "raw" mode, an
//! IMAP mailbox) or SendGrid's parsed fields, read with `mail-parser` into
//! what the domain decides on (`domain::inbound_email`): who wrote, which
//! conversation its tags or threading headers name, the new text without
//! the quoted history, its files, and whether a machine sent it.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders};

/// A file that came with an email: its name as the sender's mail program
/// gave it (not yet cleaned) and its bytes (not yet checked: the domain
/// takes it through the same upload rules as the widget's files).
#[derive(Clone, Default)]
pub struct MailFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for MailFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailFile")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// An email as the domain needs it.
#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// `Message-ID` with its angle brackets, if it has one.
    pub message_id: Option<String>,
    /// The sender's address (lowercased) and name.
    pub from: Option<(String, String)>,
    /// Every address it was sent to (To, Cc, Delivered-To, the envelope):
    /// a reply address's tag may be in any.
    pub recipients: Vec<String>,
    /// `In-Reply-To` and `References`, with their angle brackets.
    pub threads: Vec<String>,
    pub subject: String,
    /// The text as written, quoted history and all.
    pub full_text: String,
    /// Why a machine sent it (auto-reply, bounce, list), if one did.
    pub automatic: Option<&'static str>,
    /// Its files, in the order they came.
    pub files: Vec<MailFile>,
}

impl InboundMail {
    /// The new text: the full text without the quoted history and the
    /// signature below it.
    pub fn new_text(&self) -> String {
        new_text(&self.full_text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("the email cannot be read as MIME: {0}")]
    Malformed(&'static str),
}

/// Reads a raw message. `envelope_to` are the SMTP recipients when the
/// transport knows them (they name the reply address when To does not).
pub fn parse_raw(raw: &[u8], envelope_to: &[String]) -> Result<InboundMail, InboundError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(InboundError::Malformed("no header could be read"))?;
    if message.from().is_none() && message.message_id().is_none() && message.subject().is_none() {
        return Err(InboundError::Malformed("no From, Message-ID or Subject"));
    }
    let full_text = match message.body_text(0) {
        Some(text) => text.into_owned(),
        None => message
            .body_html(0)
            .map(|html| text_of_html(&html))
            .unwrap_or_default(),
    };
    let mut mail = from_message(&message, full_text, envelope_to);
    mail.files = files_of(&message);
    Ok(mail)
}

/// The files of a message: every part mail-parser counts as an attachment
/// (named files, inline images, a forwarded message), named as the sender
/// named them or, without a name, by what they are.
fn files_of(message: &Message<'_>) -> Vec<MailFile> {
    message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let name = match part.attachment_name() {
                Some(name) if !name.trim().is_empty() => name.to_string(),
                _ if part.is_message() => format!("message-{}.eml", i + 1),
                _ => format!("file-{}", i + 1),
            };
            MailFile {
                name,
                bytes: part.contents().to_vec(),
            }
        })
        .collect()
}

/// Reads SendGrid's parsed fields: the header block as it arrived, and
/// the text (or HTML) part already decoded.
pub fn parse_fields(
    headers: &str,
    text: &str,
    html: &str,
    envelope_to: &[String],
) -> Result<InboundMail, InboundError> {
    let block = format!("{}\r\n\r\n", headers.trim_end());
    let message = MessageParser::default()
        .parse(block.as_bytes())
        .ok_or(InboundError::Malformed("the headers cannot be read"))?;
    if message.from().is_none() {
        return Err(InboundError::Malformed("no From"));
    }
    let full_text = if text.trim().is_empty() {
        text_of_html(html)
    } else {
        text.to_string()
    };
    Ok(from_message(&message, full_text, envelope_to))
}

fn from_message(message: &Message<'_>, full_text: String, envelope_to: &[String]) -> InboundMail {
    let from = message.from().and_then(Address::first).and_then(|a| {
        let address = a.address()?.trim().to_ascii_lowercase();
        Some((address, a.name().unwrap_or_default().trim().to_string()))
    });
    let mut recipients: Vec<String> = [message.to(), message.cc()]
        .into_iter()
        .flatten()
        .flat_map(|list| list.iter().filter_map(|a| a.address()).map(str::to_string))
        .collect();
    for name in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        if let Some(raw) = message.header_raw(name) {
            recipients.push(raw.trim().to_string());
        }
    }
    recipients.extend(envelope_to.iter().cloned());
    let mut threads = Vec::new();
    for value in [message.in_reply_to(), message.references()] {
        threads.extend(ids_of(value));
    }
    InboundMail {
        message_id: message.message_id().map(|id| format!("<{}>", id.trim())),
        from,
        recipients,
        threads,
        subject: message.subject().unwrap_or_default().trim().to_string(),
        full_text: full_text.replace("\r\n", "\n"),
        automatic: automatic(message),
        files: Vec::new(),
    }
}

/// What is kept as the original of an email SendGrid posted as parsed
/// fields (its raw mode posts the real one): the header block as it came,
/// without the headers that described the MIME structure SendGrid took
/// apart, over the text (or else the HTML) it decoded. Its files are not
/// in it; they are taken one by one.
pub fn rebuilt_original(headers: &str, text: &str, html: &str) -> Vec<u8> {
    let mut out = String::with_capacity(headers.len() + text.len().max(html.len()) + 128);
    let mut dropping = false;
    for line in headers.lines() {
        let continued = line.starts_with([' ', '\t']);
        if !continued {
            let name = line.split(':').next().unwrap_or_default().trim();
            dropping = name.eq_ignore_ascii_case("Content-Type")
                || name.eq_ignore_ascii_case("Content-Transfer-Encoding")
                || name.eq_ignore_ascii_case("MIME-Version");
        }
        if !dropping && !line.trim().is_empty() {
            out.push_str(line.trim_end_matches('\r'));
            out.push_str("\r\n");
        }
    }
    let (kind, body) = if text.trim().is_empty() && !html.trim().is_empty() {
        ("html", html)
    } else {
        ("plain", text)
    };
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ));
    out.push_str(&body.replace("\r\n", "\n").replace('\n', "\r\n"));
    out.into_bytes()
}

fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![format!("<{}>", id.trim())],
        HeaderValue::TextList(ids) => ids.iter().map(|id| format!("<{}>", id.trim())).collect(),
        _ => Vec::new(),
    }
}

/// Why a machine sent `message`, if one did: RFC 3834's `Auto-Submitted`,
/// the `Precedence` of lists and bulk mail, a list's own headers, an empty
/// `Return-Path` (bounces), delivery reports, and the headers the common
/// auto-responders add. Such mail never becomes a message and never gets
/// an answer, so two auto-responders cannot write to each other forever.
fn automatic(message: &Message<'_>) -> Option<&'static str> {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("Auto-Submitted");
    }
    if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list")) {
        return Some("Precedence");
    }
    if header("List-Id").is_some() || header("List-Unsubscribe").is_some() {
        return Some("mailing list");
    }
    if header("Return-Path").is_some_and(|v| v == "<>" || v.is_empty()) {
        return Some("empty Return-Path (a bounce)");
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress")
            .is_some_and(|v| v.contains("all") || v.contains("autoreply"))
    {
        return Some("auto-responder");
    }
    if header("Content-Type").is_some_and(|v| v.contains("multipart/report")) {
        return Some("delivery report");
    }
    if let Some((from, _)) = message
        .from()
        .and_then(Address::first)
        .and_then(|a| a.address())
        .map(|a| (a.to_ascii_lowercase(), ()))
    {
        let local = from.split('@').next().unwrap_or_default();
        if matches!(local, "mailer-daemon" | "postmaster") {
            return Some("a mail server's own address");
        }
    }
    None
}

/// Lines that start the history a reply quotes, or the sender's signature:
/// everything from the first of them on is not the new text.
fn starts_history(line: &str, next: Option<&str>) -> bool {
    let trimmed = line.trim();
    if trimmed == "--" || line.trim_end_matches(['\r']) == "-- " {
        return true;
    }
    if trimmed.starts_with("-----Original Message-----")
        || trimmed.starts_with("-------- Original Message --------")
        || trimmed.starts_with("________________________________")
    {
        return true;
    }
    // "On Mon, 7 Dec 2026, Careline <support@…> wrote:", perhaps wrapped
    // onto a second line; and the same in a few other languages.
    const WROTE: [&str; 6] = [
        "wrote:",
        "a écrit :",
        "schrieb:",
        "escribió:",
        "ha scritto:",
        "schreef:",
    ];
    let joined: Cow<'_, str> = match next {
        Some(next) => format!("{trimmed} {}", next.trim()).into(),
        None => trimmed.into(),
    };
    let wrote = |text: &str| WROTE.iter().any(|w| text.ends_with(w));
    let opens = ["On ", "Le ", "Am ", "El ", "Il ", "Op "]
        .iter()
        .any(|w| trimmed.starts_with(w));
    if opens && (wrote(trimmed) || wrote(&joined)) {
        return true;
    }
    // Outlook's header block: "From: …" followed by "Sent: …" or "Date: …".
    trimmed.starts_with("From: ")
        && next.is_some_and(|n| {
            let n = n.trim();
            n.starts_with("Sent: ") || n.starts_with("Date: ")
        })
}

/// The new text of a reply: up to the quoted history or the signature,
/// without the `>` lines and blank lines it ends with.
pub fn new_text(full: &str) -> String {
    let lines: Vec<&str> = full.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if starts_history(line, lines.get(i + 1).copied()) {
            end = i;
            break;
        }
    }
    let mut kept = &lines[..end];
    while let Some((last, rest)) = kept.split_last() {
        let last = last.trim();
        if last.is_empty() || last.starts_with('>') {
            kept = rest;
        } else {
            break;
        }
    }
    kept.join("\n").trim().to_string()
}

/// Plain text from an HTML body: tags dropped, block ends as line breaks,
/// the common entities decoded. Enough for a reply's words; the HTML is
/// never shown as HTML.
pub fn text_of_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if matches!(
            name,
            "br" | "p" | "div" | "li" | "tr" | "blockquote" | "h1" | "h2" | "h3"
        ) {
            out.push('\n');
        }
        // Styles and scripts are not words.
        if (name == "style" || name == "script") && !tag.starts_with('/') {
            let end = format!("</{name}");
            match rest[open..].to_ascii_lowercase().find(&end) {
                Some(at) => {
                    rest = &rest[open + at..];
                    continue;
                }
                None => {
                    rest = "";
                    break;
                }
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &str = concat!(
        "From: Ada Lovelace <Ada@Example.com>\r\n",
        "To: Careline Support <support+c42-0123456789abcdef0123@help.example.com>\r\n",
        "Subject: Re: New reply on #1042\r\n",
        "Message-ID: <reply-1@mail.example.com>\r\n",
        "In-Reply-To: <o17.c42-0123456789abcdef0123@help.example.com>\r\n",
        "References: <first@mail.example.com> <o17.c42-0123456789abcdef0123@help.example.com>\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "Thanks, that worked! 🎉\r\n",
        "\r\n",
        "On Mon, 7 Dec 2026 at 10:00, Careline Support <support@help.example.com>\r\n",
        "wrote:\r\n",
        "> Try turning it off and on again.\r\n",
    );

    #[test]
    fn a_reply_is_read_with_its_threads_and_only_the_new_text() {
        let mail = parse_raw(REPLY.as_bytes(), &[]).unwrap();
        assert_eq!(
            mail.message_id.as_deref(),
            Some("<reply-1@mail.example.com>")
        );
        assert_eq!(
            mail.from,
            Some(("ada@example.com".into(), "Ada Lovelace".into()))
        );
        assert!(
            mail.recipients
                .iter()
                .any(|r| r.starts_with("support+c42-"))
        );
        assert_eq!(mail.threads.len(), 3);
        assert_eq!(mail.subject, "Re: New reply on #1042");
        assert_eq!(mail.new_text(), "Thanks, that worked! 🎉");
        assert!(mail.full_text.contains("> Try turning it off"));
        assert_eq!(mail.automatic, None);
    }

    #[test]
    fn machine_mail_is_told_apart() {
        let with = |header: &str| {
            let raw = REPLY.replacen("Subject:", &format!("{header}\r\nSubject:"), 1);
            parse_raw(raw.as_bytes(), &[]).unwrap().automatic
        };
        assert_eq!(with("Auto-Submitted: auto-replied"), Some("Auto-Submitted"));
        assert_eq!(with("Auto-Submitted: no"), None);
        assert_eq!(with("Precedence: bulk"), Some("Precedence"));
        assert_eq!(with("Precedence: junk"), Some("Precedence"));
        assert_eq!(
            with("List-Id: <team.lists.example.com>"),
            Some("mailing list")
        );
        assert!(with("Return-Path: <>").is_some());
        assert!(with("X-Autoreply: yes").is_some());
        let report = REPLY.replace(
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
        );
        assert_eq!(
            parse_raw(report.as_bytes(), &[]).unwrap().automatic,
            Some("delivery report")
        );
        let bounce = REPLY.replacen(
            "From: Ada Lovelace <Ada@Example.com>",
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>",
            1,
        );
        assert!(
            parse_raw(bounce.as_bytes(), &[])
                .unwrap()
                .automatic
                .is_some()
        );
    }

    #[test]
    fn history_and_signatures_are_cut_from_the_new_text() {
        assert_eq!(new_text("Yes.\n\n-- \nAda\nCEO"), "Yes.");
        assert_eq!(
            new_text("Fine.\n\n-----Original Message-----\nFrom: x\n"),
            "Fine."
        );
        assert_eq!(
            new_text("Top.\nFrom: Support <s@x>\nSent: Monday\nSubject: y\n\nold"),
            "Top."
        );
        assert_eq!(
            new_text("Merci.\n\nLe lun. 7 déc. 2026, Support a écrit :\n> vieux"),
            "Merci."
        );
        assert_eq!(new_text("Just text, no history."), "Just text, no history.");
        // A `>` line inside the new text stays; trailing quotes go.
        assert_eq!(new_text("> quoted\nmine\n> tail"), "> quoted\nmine");
    }

    #[test]
    fn html_only_mail_gives_its_words() {
        assert_eq!(
            text_of_html("<html><style>p{}</style><p>Hello&nbsp;<b>there</b></p><p>A &amp; B</p>"),
            "\nHello there\n\nA & B\n"
        );
    }

    #[test]
    fn files_come_with_their_names_and_decoded_bytes() {
        let raw = concat!(
            "From: ada@example.com\r\nSubject: files\r\n",
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
            "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n",
            "--b\r\nContent-Type: image/png\r\n",
            "Content-Disposition: attachment; filename=\"shot.png\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n",
            "--b\r\nContent-Type: application/octet-stream\r\n",
            "Content-Disposition: attachment\r\n\r\nno name\r\n",
            "--b--\r\n",
        );
        let mail = parse_raw(raw.as_bytes(), &[]).unwrap();
        assert_eq!(mail.new_text(), "See attached.");
        assert_eq!(mail.files.len(), 2, "{:?}", mail.files);
        assert_eq!(mail.files[0].name, "shot.png");
        assert_eq!(mail.files[0].bytes, b"\x89PNG\r\n\x1a\n");
        assert_eq!(mail.files[1].name, "file-2");
        assert!(parse_raw(REPLY.as_bytes(), &[]).unwrap().files.is_empty());
    }

    #[test]
    fn a_rebuilt_original_keeps_the_headers_but_not_the_structure_sendgrid_took_apart() {
        let headers = "From: a@example.com\r\nSubject: hi\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"x\"\r\nMIME-Version: 1.0";
        let rebuilt = String::from_utf8(rebuilt_original(headers, "Words\n> old", "")).unwrap();
        assert!(
            rebuilt.starts_with("From: a@example.com\r\nSubject: hi\r\n"),
            "{rebuilt}"
        );
        assert!(!rebuilt.contains("boundary"), "{rebuilt}");
        assert_eq!(rebuilt.matches("MIME-Version").count(), 1);
        assert!(rebuilt.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(rebuilt.ends_with("\r\n\r\nWords\r\n> old"), "{rebuilt}");
        let read = parse_raw(rebuilt.as_bytes(), &[]).unwrap();
        assert_eq!(read.full_text, "Words\n> old");
        // Without text, the HTML SendGrid decoded.
        let html = String::from_utf8(rebuilt_original(headers, " ", "<p>Hi</p>")).unwrap();
        assert!(html.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(html.ends_with("<p>Hi</p>"));
    }

    #[test]
    fn what_is_not_mail_is_refused_with_a_reason() {
        assert!(parse_raw(b"", &[]).is_err());
        assert!(parse_raw(b"\x00\x01\x02 not mail", &[]).is_err());
        assert!(parse_fields("Subject: no sender", "text", "", &[]).is_err());
    }
}
