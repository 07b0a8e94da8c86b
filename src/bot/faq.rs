//! The built-in FAQ bot: admins keep question variants and answers in the
//! admin pages, each for every site or for chosen ones; a customer's
//! message is matched against every variant answering their conversation's
//! site by text similarity, and the best entry answers when it scores above
//! the threshold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::similarity::Index;
use super::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use crate::model::SiteId;
use crate::store::{FaqEntry, Store};

/// How long a loaded FAQ is used before it is read again; an edit on this
/// instance reloads at once, one on another instance within this time.
const CACHE_FOR: Duration = Duration::from_secs(30);

pub struct FaqBot {
    store: Store,
    threshold: f64,
    /// Each site's entries, loaded when one of its conversations asks.
    cache: Mutex<HashMap<SiteId, (Instant, Arc<Loaded>)>>,
}

struct Loaded {
    entries: Vec<FaqEntry>,
    index: Index,
}

pub const NOT_UNDERSTOOD: &str = "Sorry, I did not understand that. Could you say it another way? You can also ask to talk to a person.";

impl FaqBot {
    pub fn new(store: Store, threshold: f64) -> FaqBot {
        FaqBot {
            store,
            threshold,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn loaded(&self, site: SiteId) -> Result<Arc<Loaded>, BotError> {
        if let Some((at, loaded)) = self.cache.lock().expect("faq cache").get(&site)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(loaded.clone());
        }
        let entries = self
            .store
            .faq_entries_for_site(site)
            .await
            .map_err(|e| BotError::Unavailable(e.to_string()))?;
        let index = Index::build(entries.iter().enumerate().flat_map(|(i, e)| {
            e.questions
                .lines()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(move |q| (i, q))
        }));
        let loaded = Arc::new(Loaded { entries, index });
        self.cache
            .lock()
            .expect("faq cache")
            .insert(site, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }
}

impl Bot for FaqBot {
    fn reply<'a>(&'a self, turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async move {
            let loaded = self.loaded(turn.site_id).await?;
            match loaded.index.best(turn.text) {
                Some((entry, score)) if score >= self.threshold => Ok(BotReply::Answer {
                    text: loaded.entries[entry].answer.clone(),
                    options: Vec::new(),
                }),
                _ => Ok(BotReply::NotUnderstood {
                    text: NOT_UNDERSTOOD.to_string(),
                }),
            }
        })
    }

    fn name(&self) -> &'static str {
        "faq"
    }

    fn reload(&self) {
        self.cache.lock().expect("faq cache").clear();
    }
}
