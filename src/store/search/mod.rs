//! Full-text search of one user's mail, Korean included (R16).
//!
//! Korean writes many words without spaces between them ("이번학기수강신청"),
//! so words cannot be cut at spaces: the index holds character pairs
//! (bigrams) of normalized text (`text.rs`: lower case, letters and digits
//! of every script, Hangul as syllables, ASCII cut the same way) and a
//! query for "학기" finds it inside any longer run. Fields: sender (name and
//! address), recipients (To, Cc), subject and body (text/plain, else the
//! text of text/html; the first `text::BODY_CHARS_MAX` characters);
//! the date range and folder come from the message row.
//!
//! A query runs in two steps:
//! 1. candidates: the messages whose postings hold every pair of every
//!    query word (a one-character word: any pair starting with it), read
//!    from the user's own postings and, for announcements, from the shared
//!    postings filtered by the user's `search_shared` list (`index.rs`),
//!    plus every message of the user's deliveries still waiting for the
//!    indexer (`indexer.rs`; a handful, as it keeps up);
//! 2. verification: each candidate, newest first, is read back (its row:
//!    owner, folder, date; its delivery's stored document: the text) and
//!    kept only if every word is a substring of the field asked for. So
//!    results are exact: pairs that happen to co-occur, deleted or moved
//!    messages and another user's mail never reach a result.
//!
//! At most [`MAX_MATCHES`] matches are collected (newest deliveries
//! first); a query matching more says so (`capped`) and the page asks for
//! more words instead of counting the whole mailbox.
//!
//! Size (measured by `search::bench`, recorded in bench/README.md): one
//! posting costs about one to three bytes inside a chunk of up to 64
//! (`postings.rs`), and each delivery keeps its normalized text once.
//!
//! **Invariant:** the index is derived state: a `Deliver` queues its
//! delivery in its transaction (`index::tx_queue`), the indexer posts it
//! later in a batch, an `Expunge` forgets it in its transaction
//! (`index::tx_unindex`); so both nodes of a pair build it from the ops
//! they apply and it is never replicated; fsck checks it and rebuilds it.
//! A message is found from the moment its delivery's transaction commits,
//! indexed or not.
//! **Invariant:** `search` returns only messages whose row names `user`.
//!
//! Untrusted input: the query text (normalized, never used as a key
//! beyond its terms) and message bytes (through `mime`).

#[cfg(test)]
mod bench;
pub mod index;
mod indexer;
pub mod postings;
#[cfg(test)]
mod tests;
pub mod text;

use std::collections::HashMap;

use postings::{Postings, Scope};
use text::{normalize, phrase_terms, Field, PhraseTerms, SearchDocument};

use super::id::{MessageId, OpId};
use super::message_rows::{self, MessageRecord};
use super::{MessageSummary, Store, StoreError};

/// Most matches one query collects.
pub const MAX_MATCHES: usize = 1_000;
/// Longest query text read per field (characters).
pub const MAX_QUERY_CHARS: usize = 200;

/// What a user searches for. Each text field holds words separated by
/// spaces; every word must be found (in that field; `anywhere`: in any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub anywhere: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Only this folder; None = every folder.
    pub folder: Option<String>,
    /// Unix seconds: the message's date at or after `since` ...
    pub since: Option<i64>,
    /// ... and before `until`.
    pub until: Option<i64>,
}

/// One page of results, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchResults {
    pub messages: Vec<MessageSummary>,
    /// Matches found (at most `MAX_MATCHES`).
    pub total: usize,
    /// More messages would match than were collected.
    pub capped: bool,
}

impl SearchQuery {
    /// (field, normalized phrase) of every word.
    pub fn words(&self) -> Vec<(Field, String)> {
        let mut out = Vec::new();
        for (field, text) in [
            (Field::Anywhere, &self.anywhere),
            (Field::From, &self.from),
            (Field::To, &self.to),
            (Field::Subject, &self.subject),
            (Field::Body, &self.body),
        ] {
            let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
            for word in text.split_whitespace() {
                let phrase = normalize(word);
                if !phrase.is_empty() && !out.contains(&(field, phrase.clone())) {
                    out.push((field, phrase));
                }
            }
        }
        out
    }

    /// No word to look for (dates and folder alone are not a search).
    pub fn is_empty(&self) -> bool {
        self.words().is_empty()
    }
}

/// A verified match.
struct Match {
    date: i64,
    received_at: i64,
    id: MessageId,
    rec: MessageRecord,
}

impl Store {
    /// The messages of `user` matching `query`, newest first; `offset` and
    /// `limit` page through them. An empty query matches nothing.
    pub fn search(
        &self,
        user: &str,
        query: &SearchQuery,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResults, StoreError> {
        let words = query.words();
        let none = SearchResults {
            messages: Vec::new(),
            total: 0,
            capped: false,
        };
        if words.is_empty() {
            return Ok(none);
        }
        let mut needed = PhraseTerms::default();
        for (_, phrase) in &words {
            let t = phrase_terms(phrase);
            needed.pairs.extend(t.pairs);
            needed.starts.extend(t.starts);
        }
        let mut candidates = self.own_candidates(user, &needed)?;
        candidates.extend(self.shared_candidates(user, &needed)?);
        candidates.extend(self.pending_candidates(user)?);
        // Newest delivery first (sequence numbers grow with time per node).
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        candidates.dedup();
        let mut docs: HashMap<Vec<u8>, Option<SearchDocument>> = HashMap::new();
        let mut matches = Vec::new();
        let mut capped = false;
        for (_, id) in candidates {
            let Some(rec) = self.record(&id)?.filter(|r| r.mailbox == user) else {
                continue; // deleted since, or (never) another user's
            };
            if query.folder.as_ref().is_some_and(|f| *f != rec.folder) {
                continue;
            }
            let date = rec.summary.date.unwrap_or(rec.received_at);
            if query.since.is_some_and(|s| date < s) || query.until.is_some_and(|u| date >= u) {
                continue;
            }
            let key = message_rows::delivery_key(&id, &rec)?;
            if !docs.contains_key(&key) {
                let doc = self.document_for_query(&key)?;
                docs.insert(key.clone(), doc);
            }
            let Some(Some(doc)) = docs.get(&key) else {
                continue;
            };
            if !words
                .iter()
                .all(|(field, phrase)| doc.contains(*field, phrase))
            {
                continue;
            }
            if matches.len() == MAX_MATCHES {
                capped = true;
                break;
            }
            matches.push(Match {
                date,
                received_at: rec.received_at,
                id,
                rec,
            });
        }
        matches.sort_by(|a, b| {
            (b.date, b.received_at)
                .cmp(&(a.date, a.received_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        let total = matches.len();
        let mut messages = Vec::new();
        for m in matches.into_iter().skip(offset).take(limit) {
            messages.push(self.summary(m.id, &m.rec)?);
        }
        Ok(SearchResults {
            messages,
            total,
            capped,
        })
    }

    /// Messages of `user`'s own postings holding every needed term, as
    /// (sequence, id).
    fn own_candidates(
        &self,
        user: &str,
        needed: &PhraseTerms,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let Some(found) = self.intersect_terms(Scope::Mailbox(user), needed)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(found.len());
        for (origin, numbers) in found.by_origin {
            for seq in numbers {
                let id = MessageId::from_op(&OpId {
                    origin: origin.clone(),
                    seq,
                });
                out.push((seq, id));
            }
        }
        Ok(out)
    }

    /// Messages of the shared deliveries `user` got whose postings hold
    /// every needed term.
    fn shared_candidates(
        &self,
        user: &str,
        needed: &PhraseTerms,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let prefix = index::shared_prefix(user);
        // Delivery key -> which of its targets are this user's (a delivery
        // may name one mailbox more than once).
        let mut mine: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        for entry in self.trees.search_shared.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let rest = &key[prefix.len()..];
            let Some(split) = rest.len().checked_sub(4) else {
                return Err(StoreError::Corrupt("search shared entry".into()));
            };
            let mut target = [0u8; 4];
            target.copy_from_slice(&rest[split..]);
            mine.entry(rest[..split].to_vec())
                .or_default()
                .push(u32::from_be_bytes(target));
        }
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let Some(found) = self.intersect_terms(Scope::Shared, needed)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (origin, numbers) in found.by_origin {
            for seq in numbers {
                let op = OpId {
                    origin: origin.clone(),
                    seq,
                };
                for target in mine.get(&op.log_key()).into_iter().flatten() {
                    let message = OpId {
                        origin: origin.clone(),
                        seq: seq.saturating_add(u64::from(*target)),
                    };
                    out.push((message.seq, MessageId::from_op(&message)));
                }
            }
        }
        Ok(out)
    }

    /// The numbers in `scope` holding every needed term; None when the
    /// query needs none (cannot happen for a non-empty query).
    fn intersect_terms(
        &self,
        scope: Scope<'_>,
        needed: &PhraseTerms,
    ) -> Result<Option<Postings>, StoreError> {
        let tree = &self.trees.search_postings;
        let mut found: Option<Postings> = None;
        let prefixes = needed
            .pairs
            .iter()
            .map(|t| postings::term_prefix(scope, t))
            .chain(
                needed
                    .starts
                    .iter()
                    .map(|c| postings::start_prefix(scope, *c)),
            );
        for prefix in prefixes {
            let these = postings::read(tree, &prefix)?;
            let next = match found {
                None => these,
                Some(so_far) => so_far.intersect(&these),
            };
            if next.is_empty() {
                return Ok(Some(next));
            }
            found = Some(next);
        }
        Ok(found)
    }
}
