//! The bot that answers first. The default is a built-in FAQ bot; IBM
//! Watson Assistant comes as a second adapter. The domain bounds every turn
//! with a timeout and hands the customer to a person when a bot fails, so
//! a customer never waits on a dead bot.

pub mod faq;
pub mod similarity;
pub mod switching;
pub mod watson;

pub use crate::bus::BoxFuture;

/// One customer message for the bot.
pub struct BotTurn<'a> {
    pub conversation_id: i64,
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
