//! How an email names its conversation so that a reply finds its way back:
//! a tag, signed with the server's secret, in the reply address
//! (`support+c42-<signature>@help.example.com`) and in the `Message-ID`
//! (`<o17.c42-<signature>@help.example.com>`), which a reply quotes in
//! `In-Reply-To` and `References` when its client drops the reply address.
//!
//! The tag is lowercase (some mail servers fold the local part's case) and
//! its signature is 80 bits of HMAC-SHA256: a forged or mistyped tag, or
//! one signed under another secret, names no conversation.

use crate::auth::Secret;
use crate::model::ConversationId;

/// Hex digits of signature in a tag (80 bits).
const SIGNATURE_HEX: usize = 20;

/// `c<id>-<signature>`: the tag that names `conversation`.
pub fn tag(secret: &Secret, conversation: ConversationId) -> String {
    let id = conversation.0.to_string();
    format!("c{id}-{}", secret.sign_hex("reply-tag", &id, SIGNATURE_HEX))
}

/// `support+<tag>@domain` from the configured reply address.
pub fn reply_address(base: &str, tag: &str) -> String {
    match base.split_once('@') {
        Some((local, domain)) => format!("{local}+{tag}@{domain}"),
        None => base.to_string(),
    }
}

/// The `Message-ID` of outbox row `outbox_id`: the same on every attempt to
/// send it, and carrying the conversation's tag when it has one.
pub fn message_id(outbox_id: i64, tag: Option<&str>, domain: &str) -> String {
    match tag {
        Some(tag) => format!("<o{outbox_id}.{tag}@{domain}>"),
        None => format!("<o{outbox_id}.careline@{domain}>"),
    }
}

/// The conversation a validly signed tag anywhere in `text` names (an
/// address, a `Message-ID`, a `References` header): the first that
/// verifies.
pub fn conversation_in(secret: &Secret, text: &str) -> Option<ConversationId> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(at) = lower[from..].find('c').map(|i| i + from) {
        from = at + 1;
        // A tag starts after a separator: `+`, `.`, `<` or the start.
        if at > 0 && !matches!(bytes[at - 1], b'+' | b'.' | b'<' | b' ') {
            continue;
        }
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 18 {
            continue;
        }
        let id_end = at + 1 + digits;
        if bytes.get(id_end) != Some(&b'-') {
            continue;
        }
        let Some(signature) = lower.get(id_end + 1..id_end + 1 + SIGNATURE_HEX) else {
            continue;
        };
        let Ok(id) = lower[at + 1..id_end].parse::<i64>() else {
            continue;
        };
        let expected = secret.sign_hex("reply-tag", &id.to_string(), SIGNATURE_HEX);
        if crate::auth::same_secret(&expected, signature) {
            return Some(ConversationId(id));
        }
    }
    None
}

/// Whether `id` may go into a header as a `Message-ID`: `<…@…>`, visible
/// ASCII only (no CR or LF can reach a header through it), of a sane size.
pub fn is_message_id(id: &str) -> bool {
    id.len() <= 250
        && id.starts_with('<')
        && id.ends_with('>')
        && id.contains('@')
        && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The domain of an address, for `Message-ID`s.
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("careline.invalid", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("a-test-secret-of-enough-length-0123456789")
    }

    #[test]
    fn a_tag_names_its_conversation_in_an_address_and_a_message_id() {
        let tag = tag(&secret(), ConversationId(42));
        assert!(tag.starts_with("c42-"));
        assert_eq!(tag, tag.to_ascii_lowercase());
        let address = reply_address("support@help.example.com", &tag);
        assert_eq!(address, format!("support+{tag}@help.example.com"));
        assert_eq!(
            conversation_in(&secret(), &address),
            Some(ConversationId(42))
        );
        // Mail servers may change the case of the local part.
        assert_eq!(
            conversation_in(&secret(), &address.to_uppercase()),
            Some(ConversationId(42))
        );
        let id = message_id(7, Some(&tag), "help.example.com");
        let references = format!("<unrelated@mail.example> {id}");
        assert_eq!(
            conversation_in(&secret(), &references),
            Some(ConversationId(42))
        );
    }

    #[test]
    fn only_a_plain_message_id_goes_into_a_header() {
        assert!(is_message_id("<abc.123@mail.example.com>"));
        assert!(!is_message_id("<abc@x>\r\nBcc: victim@example.com"));
        assert!(!is_message_id("abc@x"));
        assert!(!is_message_id("<a b@x>"));
        assert!(!is_message_id(&format!("<{}@x>", "a".repeat(300))));
    }

    #[test]
    fn a_forged_or_foreign_tag_names_nothing() {
        let real = tag(&secret(), ConversationId(42));
        // Another conversation's number with this one's signature.
        let forged = real.replacen("c42-", "c43-", 1);
        assert_eq!(conversation_in(&secret(), &forged), None);
        // Signed under another secret (a rotated key, another install).
        let other = tag(
            &Secret::new("another-secret-entirely-0123456789abcdef"),
            ConversationId(42),
        );
        assert_eq!(conversation_in(&secret(), &other), None);
        // Cut short, or no tag at all.
        assert_eq!(conversation_in(&secret(), &real[..real.len() - 1]), None);
        assert_eq!(conversation_in(&secret(), "support@help.example.com"), None);
        assert_eq!(conversation_in(&secret(), ""), None);
    }
}
