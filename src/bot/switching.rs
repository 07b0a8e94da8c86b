//! The bot customers talk to: the built-in FAQ bot or Watson Assistant, as
//! an admin chose on the admin page (stored in `settings`, the API key
//! sealed). Changes apply without a restart: at once on the instance that
//! saved them, within 30 s on the others. When Watson fails, the customer
//! goes to a person or to the FAQ bot, whichever the admin chose.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::faq::FaqBot;
use super::watson::{WatsonBot, WatsonSettings};
use super::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use crate::auth::Secret;
use crate::egress::Policy;
use crate::store::{Store, StoreResult};

const CHECK_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotKind {
    Faq,
    Watson,
}

/// What happens to a customer when Watson fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Person,
    Faq,
}

/// The bot settings as stored (the API key sealed).
#[derive(Clone, PartialEq)]
pub struct BotSettings {
    pub kind: BotKind,
    pub watson: WatsonSettings,
    pub fallback: Fallback,
}

impl BotSettings {
    pub async fn load(store: &Store, secret: &Secret) -> StoreResult<BotSettings> {
        let get = |name: &'static str| async move {
            store.setting(name).await.map(|v| v.unwrap_or_default())
        };
        let api_key = get("bot.watson.api_key").await?;
        Ok(BotSettings {
            kind: if get("bot.kind").await? == "watson" {
                BotKind::Watson
            } else {
                BotKind::Faq
            },
            watson: WatsonSettings {
                url: get("bot.watson.url").await?,
                assistant_id: get("bot.watson.assistant_id").await?,
                api_key: secret.open(&api_key).unwrap_or_default(),
                version: Some(get("bot.watson.version").await?)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "2021-11-27".into()),
                iam_url: Some(get("bot.watson.iam_url").await?)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "https://iam.cloud.ibm.com/identity/token".into()),
                min_confidence: get("bot.watson.min_confidence")
                    .await?
                    .parse()
                    .unwrap_or(0.3),
            },
            fallback: if get("bot.watson.fallback").await? == "faq" {
                Fallback::Faq
            } else {
                Fallback::Person
            },
        })
    }

    /// Saves the settings; `new_api_key` empty keeps the stored key.
    pub async fn save(&self, store: &Store, secret: &Secret, new_api_key: &str) -> StoreResult<()> {
        let mut values = vec![
            (
                "bot.kind",
                if self.kind == BotKind::Watson {
                    "watson"
                } else {
                    "faq"
                }
                .to_string(),
            ),
            ("bot.watson.url", self.watson.url.clone()),
            ("bot.watson.assistant_id", self.watson.assistant_id.clone()),
            ("bot.watson.version", self.watson.version.clone()),
            ("bot.watson.iam_url", self.watson.iam_url.clone()),
            (
                "bot.watson.min_confidence",
                self.watson.min_confidence.to_string(),
            ),
            (
                "bot.watson.fallback",
                if self.fallback == Fallback::Faq {
                    "faq"
                } else {
                    "person"
                }
                .to_string(),
            ),
        ];
        if !new_api_key.is_empty() {
            values.push(("bot.watson.api_key", secret.seal(new_api_key)));
        }
        store.save_settings(&values).await
    }

    /// The stored API key as admins may see it: its last four characters.
    pub fn api_key_hint(&self) -> Option<String> {
        let key = &self.watson.api_key;
        (!key.is_empty()).then(|| {
            let tail: String = key
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("••••{tail}")
        })
    }
}

enum Active {
    Faq,
    Watson {
        bot: Arc<WatsonBot>,
        fallback: Fallback,
    },
}

struct Loaded {
    at: Instant,
    settings: Option<BotSettings>,
    active: Arc<Active>,
}

pub struct SwitchingBot {
    store: Store,
    secret: Secret,
    faq: Arc<FaqBot>,
    /// Watson's URLs are an admin's: called under this policy.
    egress: Policy,
    loaded: Mutex<Option<Loaded>>,
}

impl SwitchingBot {
    pub fn new(store: Store, secret: Secret, faq: FaqBot, egress: Policy) -> SwitchingBot {
        SwitchingBot {
            store,
            secret,
            faq: Arc::new(faq),
            egress,
            loaded: Mutex::new(None),
        }
    }

    async fn active(&self) -> Arc<Active> {
        let current = {
            let loaded = self.loaded.lock().expect("bot lock");
            match loaded.as_ref() {
                Some(l) if l.at.elapsed() < CHECK_EVERY => return l.active.clone(),
                Some(l) => Some((l.settings.clone(), l.active.clone())),
                None => None,
            }
        };
        let settings = match BotSettings::load(&self.store, &self.secret).await {
            Ok(settings) => Some(settings),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the bot settings; keeping the current bot");
                None
            }
        };
        // Same settings: keep the running bot (its token cache and breaker).
        let active = match (&current, &settings) {
            (Some((Some(old), active)), Some(new)) if old == new => active.clone(),
            (Some((_, active)), None) => active.clone(),
            (_, Some(s)) if s.kind == BotKind::Watson => Arc::new(Active::Watson {
                bot: Arc::new(WatsonBot::new(
                    s.watson.clone(),
                    self.store.clone(),
                    &self.egress,
                )),
                fallback: s.fallback,
            }),
            _ => Arc::new(Active::Faq),
        };
        *self.loaded.lock().expect("bot lock") = Some(Loaded {
            at: Instant::now(),
            settings,
            active: active.clone(),
        });
        active
    }
}

impl Bot for SwitchingBot {
    fn reply<'a>(&'a self, turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async move {
            match &*self.active().await {
                Active::Faq => self.faq.reply(turn).await,
                Active::Watson { bot, fallback } => {
                    let BotTurn {
                        conversation_id,
                        site_id,
                        text,
                    } = turn;
                    match bot.reply(turn).await {
                        Ok(reply) => Ok(reply),
                        Err(e) if *fallback == Fallback::Faq => {
                            tracing::warn!(error = %e, "Watson failed; the FAQ bot answers");
                            self.faq
                                .reply(BotTurn {
                                    conversation_id,
                                    site_id,
                                    text,
                                })
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "switching"
    }

    fn reload(&self) {
        *self.loaded.lock().expect("bot lock") = None;
        self.faq.reload();
    }
}
