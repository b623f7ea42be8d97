//! What the search index reads of a message, and how text is normalized
//! and cut into terms.
//!
//! Normalization (the same for messages and queries): lower case
//! (`char::to_lowercase`); letters and digits of every script are kept,
//! everything else (spaces, punctuation, `@`, `<`, symbols) becomes one
//! space; runs of spaces collapse. Hangul stays as precomposed syllables
//! (what mail carries in practice); decomposed jamo (NFD, rare in mail)
//! is not composed here, a known gap.
//!
//! Terms: every pair of neighbouring characters inside a run ("이번학기"
//! gives 이번, 번학, 학기) plus the last character of each run paired with
//! [`END`], so every character of the text starts at least one term and a
//! one-character query can be answered from the terms that start with it.
//! ASCII words are cut the same way (not indexed as whole words): one rule
//! for every script, substrings of addresses and words ("campus" inside
//! "mycampus") are found, and a query is verified against the text anyway,
//! so the weaker selectivity of ASCII pairs costs only candidates.
//!
//! The body is capped at [`BODY_CHARS_MAX`] characters after normalization
//! (about a page of text): what most people search for is near the top,
//! and it bounds both the index and the per-delivery text kept for
//! verification. Headers are capped at [`HEADER_CHARS_MAX`] each.
//!
//! Untrusted input: message bytes (read through `mime::render`, which never
//! panics) and query text; both only pass through `normalize`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::store::op::SummaryFields;
use crate::store::StoreError;

/// Characters of normalized body text indexed (and kept) per message.
pub const BODY_CHARS_MAX: usize = 2_000;
/// Characters of each normalized header field indexed.
pub const HEADER_CHARS_MAX: usize = 500;
/// The second character of a run's last term (never in normalized text).
pub const END: char = '\u{1}';

/// First byte of every stored document written by this version.
const DOC_V1: u8 = 1;

/// The normalized fields of one delivered message, stored once per
/// delivery and read back to verify every candidate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchDocument {
    /// Sender: display name and address.
    pub from: String,
    /// Recipients: To and Cc, names and addresses.
    pub to: String,
    pub subject: String,
    /// The text/plain body, else the text of the text/html body.
    pub body: String,
}

/// Which part of a message a query word must be found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Anywhere,
    From,
    To,
    Subject,
    Body,
}

impl SearchDocument {
    /// Reads a message's fields (charsets as `mime` decodes them, EUC-KR
    /// and CP949 included). Never fails: unreadable mail gives what `mime`
    /// recovers.
    pub fn from_message(raw: &[u8]) -> SearchDocument {
        let rendered = crate::mime::render(raw, false);
        let body = match (&rendered.text, &rendered.html) {
            (Some(text), _) => text.clone(),
            (None, Some(html)) => mail_parser::decoders::html::html_to_text(html),
            (None, None) => String::new(),
        };
        SearchDocument {
            from: capped(&rendered.from, HEADER_CHARS_MAX),
            to: capped(
                &format!("{} {}", rendered.to, rendered.cc),
                HEADER_CHARS_MAX,
            ),
            subject: capped(&rendered.subject, HEADER_CHARS_MAX),
            body: capped(&body, BODY_CHARS_MAX),
        }
    }

    /// What an op alone says (sender and subject), for a delivery applied
    /// without its bytes at hand.
    pub fn from_summary(summary: &SummaryFields) -> SearchDocument {
        SearchDocument {
            from: capped(&summary.from, HEADER_CHARS_MAX),
            subject: capped(&summary.subject, HEADER_CHARS_MAX),
            ..SearchDocument::default()
        }
    }

    /// Every distinct term of every field, sorted.
    pub fn terms(&self) -> BTreeSet<Term> {
        let mut out = BTreeSet::new();
        for field in [&self.from, &self.to, &self.subject, &self.body] {
            for run in field.split(' ').filter(|r| !r.is_empty()) {
                let chars: Vec<char> = run.chars().collect();
                for pair in chars.windows(2) {
                    out.insert(Term::pair(pair[0], pair[1]));
                }
                if let Some(&last) = chars.last() {
                    out.insert(Term::pair(last, END));
                }
            }
        }
        out
    }

    /// Is normalized `phrase` inside `field`?
    pub fn contains(&self, field: Field, phrase: &str) -> bool {
        match field {
            Field::Anywhere => [&self.from, &self.to, &self.subject, &self.body]
                .iter()
                .any(|f| f.contains(phrase)),
            Field::From => self.from.contains(phrase),
            Field::To => self.to.contains(phrase),
            Field::Subject => self.subject.contains(phrase),
            Field::Body => self.body.contains(phrase),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = vec![DOC_V1];
        out.extend(
            postcard::to_allocvec(self)
                .map_err(|e| StoreError::Corrupt(format!("encoding a search document: {e}")))?,
        );
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<SearchDocument, StoreError> {
        match bytes.split_first() {
            Some((&DOC_V1, body)) => postcard::from_bytes(body)
                .map_err(|e| StoreError::Corrupt(format!("search document: {e}"))),
            _ => Err(StoreError::Corrupt(
                "search document of an unknown version".into(),
            )),
        }
    }
}

/// An index term: two characters as UTF-8 (the second may be [`END`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub Vec<u8>);

impl Term {
    pub fn pair(a: char, b: char) -> Term {
        let mut buf = [0u8; 8];
        let mut out = a.encode_utf8(&mut buf).as_bytes().to_vec();
        out.extend_from_slice(b.encode_utf8(&mut buf).as_bytes());
        Term(out)
    }
}

/// What the index must hold for a message to match one query phrase:
/// every pair of neighbours of its runs, and for a run of one character,
/// some term that starts with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhraseTerms {
    pub pairs: BTreeSet<Term>,
    pub starts: BTreeSet<char>,
}

/// The terms of a normalized query phrase.
pub fn phrase_terms(phrase: &str) -> PhraseTerms {
    let mut out = PhraseTerms::default();
    for run in phrase.split(' ').filter(|r| !r.is_empty()) {
        let chars: Vec<char> = run.chars().collect();
        if let [only] = chars[..] {
            out.starts.insert(only);
        }
        for pair in chars.windows(2) {
            out.pairs.insert(Term::pair(pair[0], pair[1]));
        }
    }
    out
}

/// Lower case, letters and digits kept, anything else one space, trimmed.
pub fn normalize(text: &str) -> String {
    normalize_capped(text, usize::MAX)
}

fn capped(text: &str, max_chars: usize) -> String {
    normalize_capped(text, max_chars)
}

fn normalize_capped(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(3)));
    let mut count = 0usize;
    let mut space = true; // no leading space
    'chars: for c in text.chars() {
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                if count >= max_chars {
                    break 'chars;
                }
                out.push(lower);
                count += 1;
            }
            space = false;
        } else if !space {
            if count >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
            space = true;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_keeps_letters_of_every_script() {
        assert_eq!(
            normalize("  Kim, Chul-Soo <KIM@Campus.Test> "),
            "kim chul soo kim campus test"
        );
        assert_eq!(
            normalize("[공지] 이번학기 수강신청!!"),
            "공지 이번학기 수강신청"
        );
        assert_eq!(normalize("...!!"), "");
        assert_eq!(normalize_capped("가나다라마", 3), "가나다");
    }

    #[test]
    fn every_character_starts_a_term() {
        let doc = SearchDocument {
            subject: normalize("학기 a"),
            ..SearchDocument::default()
        };
        let terms = doc.terms();
        assert!(terms.contains(&Term::pair('학', '기')));
        assert!(terms.contains(&Term::pair('기', END)));
        assert!(terms.contains(&Term::pair('a', END)));
        assert_eq!(terms.len(), 3);
    }

    #[test]
    fn a_phrase_needs_its_pairs_and_single_letters() {
        let t = phrase_terms(&normalize("이번학기 a"));
        assert_eq!(t.pairs.len(), 3);
        assert_eq!(t.starts.iter().collect::<Vec<_>>(), vec![&'a']);
    }

    #[test]
    fn documents_round_trip_and_damage_is_corrupt() -> Result<(), StoreError> {
        let doc = SearchDocument {
            from: "김 kim x".into(),
            to: "b".into(),
            subject: "공지".into(),
            body: "본문".into(),
        };
        assert_eq!(SearchDocument::decode(&doc.encode()?)?, doc);
        assert!(SearchDocument::decode(&[]).is_err());
        assert!(SearchDocument::decode(&[9, 1]).is_err());
        Ok(())
    }
}
