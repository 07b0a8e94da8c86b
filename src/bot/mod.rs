//! The bot that answers first. The default is a built-in FAQ bot; IBM
//! Watson Assistant comes as a second adapter. The domain bounds every turn
//! with a timeout and hands the customer to a person when a bot fails, so
//! a customer never waits on a dead bot.

pub mod faq;
pub mod similarity;
pub mod switching;
pub mod watson;

pub use crate::adapter::BoxFuture;
use crate::model::text::{clean_text, is_hidden};
use crate::model::{ConversationId, MAX_BODY, SiteId};

/// One customer message for the bot.
pub struct BotTurn<'a> {
    pub conversation_id: ConversationId,
    /// The site the conversation came from: the FAQ bot answers from the
    /// entries for it.
    pub site_id: SiteId,
    pub text: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BotReply {
    /// The bot knows the answer; `options` are shown as buttons.
    Answer { text: String, options: Vec<String> },
    /// The bot did not understand; counts towards the miss limit.
    NotUnderstood { text: String },
    /// The bot decided a person must take over; `note` goes to the agent.
    Handoff { text: String, note: Option<String> },
}

/// Buttons under one bot message, at most.
pub const MAX_OPTIONS: usize = 10;
/// Characters of one button's label, at most.
pub const MAX_OPTION_CHARS: usize = 200;

/// The buttons a bot's answer may show. What a bot offers is untrusted
/// (Watson's options are whatever its assistant was given), and Careline
/// stores them with the message and sends them to every socket: each label
/// has its control characters and direction overrides turned into spaces, is trimmed and cut to
/// [`MAX_OPTION_CHARS`]; empty labels are dropped; the first
/// [`MAX_OPTIONS`] are kept. Work per label is bounded too: no label is
/// read past its first [`MAX_OPTION_CHARS`] characters of text.
pub fn bounded_options(offered: &[String]) -> Vec<String> {
    offered
        .iter()
        .filter_map(|label| {
            let label: String = label
                .chars()
                .map(|c| if is_hidden(c) { ' ' } else { c })
                .skip_while(|c| c.is_whitespace())
                .take(MAX_OPTION_CHARS)
                .collect();
            let label = label.trim_end();
            (!label.is_empty()).then(|| label.to_string())
        })
        .take(MAX_OPTIONS)
        .collect()
}

/// A bot's answer as stored and sent: at most [`MAX_BODY`] characters, the
/// limit people's messages have, cleaned of hidden characters as theirs
/// are (an assistant's text is checked nowhere else).
pub fn bounded_text(text: &str) -> String {
    clean_text(crate::model::text::at_most(text, MAX_BODY)).into_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("the bot is unavailable: {0}")]
    Unavailable(String),
}

pub trait Bot: Send + Sync + 'static {
    fn reply<'a>(&'a self, turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>>;

    fn name(&self) -> &'static str;

    /// Called when an admin changed what the bot knows.
    fn reload(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_bots_text_is_cut_at_the_limit_peoples_messages_have() {
        let short = "Our hours are 9 to 5.";
        assert_eq!(bounded_text(short), short);
        let exact = "é".repeat(MAX_BODY);
        assert_eq!(bounded_text(&exact), exact);
        let long = "é".repeat(MAX_BODY + 5);
        let kept = bounded_text(&long);
        assert_eq!(kept.chars().count(), MAX_BODY);
        assert!(long.starts_with(kept.as_str()));
        assert_eq!(bounded_text("ok\0\u{1b}[2J\u{202e}!"), "ok[2J!");
    }

    #[test]
    fn options_are_trimmed_and_empty_ones_dropped() {
        let offered = strings(&["  Orders ", "", "   ", "\tBilling\n", "Re\u{0}funds"]);
        assert_eq!(bounded_options(&offered), ["Orders", "Billing", "Re funds"]);
        // A direction override cannot turn a label around.
        let offered = strings(&["Yes\u{202e}, cancel", "\u{2066}No\u{2069}"]);
        assert_eq!(bounded_options(&offered), ["Yes , cancel", "No"]);
    }

    #[test]
    fn at_most_ten_options_are_kept_counting_only_real_ones() {
        let mut offered = vec![String::new(); 3];
        offered.extend((1..=15).map(|n| format!("Option {n}")));
        let kept = bounded_options(&offered);
        assert_eq!(kept.len(), MAX_OPTIONS);
        assert_eq!(kept.first().map(String::as_str), Some("Option 1"));
        assert_eq!(kept.last().map(String::as_str), Some("Option 10"));
    }

    #[test]
    fn a_long_label_is_cut_to_200_characters_not_bytes() {
        let long = format!("  {}", "é".repeat(5_000));
        let kept = bounded_options(&[long]);
        assert_eq!(kept[0].chars().count(), MAX_OPTION_CHARS);
        assert!(kept[0].chars().all(|c| c == 'é'));
        // A cut that ends on a space leaves no trailing space.
        let spaced = format!("{} tail", "a".repeat(MAX_OPTION_CHARS - 1));
        assert_eq!(
            bounded_options(&[spaced]),
            ["a".repeat(MAX_OPTION_CHARS - 1)]
        );
    }

    #[test]
    fn nothing_offered_is_nothing_shown() {
        assert!(bounded_options(&[]).is_empty());
        assert!(bounded_options(&strings(&["", " \r\n "])).is_empty());
    }
}
