//! Text as Careline keeps it: what people and bots send is cleaned once,
//! on the way in, of characters that no reader needs and that can hide or
//! disguise what a text says: C0 and C1 control characters (NUL, ESC,
//! DEL…) and the bidirectional overrides, embeddings and isolates (U+202A–
//! U+202E, U+2066–U+2069) that make `exe.pdf` read as `fdp.exe`. Left-to-
//! right and right-to-left marks (U+200E, U+200F) stay: Arabic and Hebrew
//! text needs them and they cannot reorder anything.

use std::borrow::Cow;

/// Whether `c` is never kept: a control character or a direction override.
pub fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A text of several lines (a message, a ticket's description, a bot's
/// answer): newlines and tabs stay (a `\r\n` becomes `\n`), everything
/// hidden goes. Every chat message passes here: a clean text, nearly all of
/// them, is returned as it is, without a copy.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    let kept = |c: char| matches!(c, '\n' | '\t') || !is_hidden(c);
    if text.chars().all(kept) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("\r\n", "\n")
            .chars()
            .filter(|&c| kept(c))
            .collect(),
    )
}

/// At most `max_chars` characters of `text`, cut at a character boundary.
pub fn at_most(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// A text of one line (a name, a subject, a button's label): line breaks
/// and tabs become spaces, everything hidden goes.
pub fn clean_line(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if is_hidden(c) => None,
            c => Some(c),
        })
        .collect()
}

/// Whether `text` holds anything [`clean_line`] would change.
pub fn has_hidden(text: &str) -> bool {
    text.chars().any(is_hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_direction_overrides_go_lines_and_marks_stay() {
        assert_eq!(
            clean_text("a\0b\u{1b}[31mc\r\nd\te\u{7f}\u{85}"),
            "ab[31mc\nd\te"
        );
        assert_eq!(clean_text("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_text("\u{2066}x\u{2069}"), "x");
        assert_eq!(clean_text("שלום\u{200f} ok"), "שלום\u{200f} ok");
        assert_eq!(clean_line("Printer\r\nbroken\tnow"), "Printer  broken now");
        assert_eq!(clean_line("Yes\u{202e}, cancel"), "Yes, cancel");
        assert!(has_hidden("a\u{202e}b") && has_hidden("a\0") && !has_hidden("é ü"));
    }
}
