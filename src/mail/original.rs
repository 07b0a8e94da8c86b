//! An email's original read for people: the headers they look for and the
//! whole text, quoted history included, as plain text. Whatever the email
//! held (HTML, scripts, remote images), what comes out is only text for a
//! page to escape.

use mail_parser::{Address, MessageParser};

use super::inbound::text_of_html;

/// An original as the page shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginalText {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub date: String,
    pub subject: String,
    /// The text part, or the words of the HTML part, in full.
    pub text: String,
    /// Its files by name (they are on the ticket as their own messages).
    pub files: Vec<String>,
}

/// Reads a kept original; `None` if it is no longer readable as MIME (it
/// can still be downloaded as it is).
pub fn read(raw: &[u8]) -> Option<OriginalText> {
    let message = MessageParser::default().parse(raw)?;
    // As `inbound::parse_raw` reads it, without cutting the history.
    let text = match message.body_text(0) {
        Some(text) => text.into_owned(),
        None => message
            .body_html(0)
            .map(|html| text_of_html(&html))
            .unwrap_or_default(),
    };
    let files = message
        .attachments()
        .filter_map(|part| mail_parser::MimeHeaders::attachment_name(part).map(str::to_string))
        .collect();
    Some(OriginalText {
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        date: message.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        subject: message.subject().unwrap_or_default().to_string(),
        text: text.replace("\r\n", "\n"),
        files,
    })
}

/// `Name <address>, …` as a person reads a header.
fn addresses(list: Option<&Address<'_>>) -> String {
    list.map(|list| {
        list.iter()
            .map(|a| match (a.name(), a.address()) {
                (Some(name), Some(address)) => format!("{name} <{address}>"),
                (None, Some(address)) => address.to_string(),
                (Some(name), None) => name.to_string(),
                (None, None) => String::new(),
            })
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_original_gives_its_headers_and_whole_text() {
        let raw = concat!(
            "From: Grace Hopper <grace@example.com>\r\n",
            "To: help@shop.example, Ops <ops@shop.example>\r\n",
            "Cc: boss@example.com\r\n",
            "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n",
            "Subject: Re: jam\r\n",
            "\r\n",
            "Still jams.\r\n\r\nOn Mon, Support wrote:\r\n> Try the tray\r\n",
        );
        let read = read(raw.as_bytes()).unwrap();
        assert_eq!(read.from, "Grace Hopper <grace@example.com>");
        assert_eq!(read.to, "help@shop.example, Ops <ops@shop.example>");
        assert_eq!(read.cc, "boss@example.com");
        assert!(read.date.contains("7 Dec 2026 10:00:00"), "{}", read.date);
        assert_eq!(read.subject, "Re: jam");
        assert!(read.text.contains("> Try the tray"), "the history stays");
    }

    #[test]
    fn html_only_originals_give_words_not_markup() {
        let raw = concat!(
            "From: a@example.com\r\nSubject: x\r\n",
            "Content-Type: text/html; charset=utf-8\r\n\r\n",
            "<p>Hello <b>there</b></p><script>alert(1)</script>",
        );
        let read = read(raw.as_bytes()).unwrap();
        assert!(read.text.contains("Hello there"), "{}", read.text);
        assert!(!read.text.contains("<b>"), "{}", read.text);
    }
}
