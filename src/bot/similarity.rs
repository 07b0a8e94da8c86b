//! Text similarity for the FAQ bot: TF-IDF weighted cosine similarity over
//! words and character trigrams. Words carry meaning; trigrams forgive typos
//! and word forms ("refunds" ~ "refund", "pasword" ~ "password").

use std::collections::HashMap;

const STOPWORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "am", "was", "be", "do", "does", "did", "i", "you", "we", "my",
    "your", "our", "me", "to", "of", "in", "on", "for", "it", "its", "can", "could", "how", "what",
    "please", "and", "or", "with", "at", "this", "that", "there", "have", "has", "hi", "hello",
    "hey", "would", "like", "want", "need", "some", "any", "about", "just", "so", "im", "dont",
];

/// Lower-cased, lightly stemmed words with stop words removed.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(w))
        .map(stem)
        .collect()
}

/// A deliberately small English stemmer: plurals and common verb endings,
/// enough that "refunds", "refunded" and "refunding" meet "refund".
fn stem(word: &str) -> String {
    let n = word.chars().count();
    for (suffix, replacement, min) in [
        ("ies", "y", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ] {
        if n >= min && word.ends_with(suffix) && !word.ends_with("ss") {
            return format!("{}{replacement}", &word[..word.len() - suffix.len()]);
        }
    }
    word.to_string()
}

/// Weighted features of a text: each word (weight 2) and each character
/// trigram of each word with boundary markers (weight 1).
fn features(text: &str) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for word in words(text) {
        let padded: Vec<char> = format!("^{word}$").chars().collect();
        for window in padded.windows(3) {
            *out.entry(format!("#{}", window.iter().collect::<String>()))
                .or_default() += 1.0;
        }
        *out.entry(word).or_default() += 2.0;
    }
    out
}

/// An index of documents (question variants) to match queries against.
pub struct Index {
    docs: Vec<(usize, HashMap<String, f64>)>,
    idf: HashMap<String, f64>,
}

impl Index {
    /// `docs` are (entry index, text) pairs: several texts may share an entry.
    pub fn build<'a>(docs: impl IntoIterator<Item = (usize, &'a str)>) -> Index {
        let raw: Vec<(usize, HashMap<String, f64>)> =
            docs.into_iter().map(|(i, t)| (i, features(t))).collect();
        let n = raw.len().max(1) as f64;
        let mut df: HashMap<String, f64> = HashMap::new();
        for (_, f) in &raw {
            for term in f.keys() {
                *df.entry(term.clone()).or_default() += 1.0;
            }
        }
        let idf: HashMap<String, f64> = df
            .into_iter()
            .map(|(t, d)| (t, (1.0 + n / d).ln()))
            .collect();
        let docs = raw.into_iter().map(|(i, f)| (i, weigh(f, &idf))).collect();
        Index { docs, idf }
    }

    /// The best matching entry and its score in [0, 1], if any text matched at all.
    pub fn best(&self, query: &str) -> Option<(usize, f64)> {
        let q = weigh(features(query), &self.idf);
        self.docs
            .iter()
            .map(|(entry, doc)| (*entry, cosine(&q, doc)))
            .filter(|(_, score)| *score > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

fn weigh(mut features: HashMap<String, f64>, idf: &HashMap<String, f64>) -> HashMap<String, f64> {
    // A query term that no question contains can match nothing; it still
    // counts (a query about something else must score low) but only as
    // much as the most common known term, so one stray word does not drown
    // a good match.
    let unseen = idf.values().cloned().fold(f64::INFINITY, f64::min).min(1.0);
    for (term, weight) in features.iter_mut() {
        *weight *= idf.get(term).copied().unwrap_or(unseen);
    }
    features
}

fn cosine(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> f64 {
    let (small, large) = if a.len() < b.len() { (a, b) } else { (b, a) };
    let dot: f64 = small
        .iter()
        .filter_map(|(t, w)| large.get(t).map(|v| v * w))
        .sum();
    let norm = |m: &HashMap<String, f64>| m.values().map(|w| w * w).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::build([
            (0, "What are your opening hours?"),
            (0, "When are you open?"),
            (1, "How do I reset my password?"),
            (1, "I forgot my password"),
            (2, "How do I get a refund?"),
        ])
    }

    #[test]
    fn rephrased_questions_match_their_entry() {
        let index = index();
        for (query, entry) in [
            ("when do you open", 0),
            ("opening times?", 0),
            ("I forgot my pasword", 1),
            ("refunds", 2),
            ("RESET PASSWORD", 1),
        ] {
            let (found, score) = index.best(query).expect(query);
            eprintln!("{query}: {score:.2}");
            assert_eq!(found, entry, "{query} matched {found} ({score:.2})");
            // 0.45 is the default `faq_threshold`.
            assert!(score > 0.45, "{query}: {score:.2}");
        }
    }

    #[test]
    fn stemming_meets_word_forms() {
        assert_eq!(stem("refunds"), "refund");
        assert_eq!(stem("deliveries"), "delivery");
        assert_eq!(stem("opening"), "open");
        assert_eq!(stem("address"), "address");
        assert_eq!(stem("is"), "is");
    }

    #[test]
    fn unrelated_text_scores_low() {
        let index = index();
        let score = index
            .best("the weather in Lisbon")
            .map(|(_, s)| s)
            .unwrap_or(0.0);
        assert!(score < 0.2, "{score}");
        assert!(index.best("").is_none());
    }
}
