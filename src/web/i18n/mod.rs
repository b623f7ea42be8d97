//! Page language and the string catalogs (Korean first, English second).
//!
//! Owns: the two catalogs `ko.toml` and `en.toml`, embedded in the binary and
//! parsed once on first use; the rule that picks a request's language.
//!
//! Invariants:
//! - Every user-visible string of the web pages comes from a catalog; the
//!   templates only name keys (`t.get("inbox.title")`).
//! - Both catalogs have exactly the same keys, and every key a template names
//!   exists (unit tests check both).
//! - Language choice: `?lang=` on the request, else the `lang` cookie, else
//!   Accept-Language, else the configured default.
//!
//! Reads untrusted input: the `lang` query value, the `lang` cookie and the
//! Accept-Language header; each is only compared with the two known codes.

use std::collections::HashMap;
use std::sync::OnceLock;

const KO_TOML: &str = include_str!("ko.toml");
const EN_TOML: &str = include_str!("en.toml");

/// A language the pages are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    /// The BCP 47 code, as used in `<html lang>` and in the `lang` cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// Parses exactly "ko" or "en" (any case); anything else is `None`.
    pub fn parse(value: &str) -> Option<Lang> {
        if value.eq_ignore_ascii_case("ko") {
            Some(Lang::Ko)
        } else if value.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language a "switch language" link leads to.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ko => Lang::En,
            Lang::En => Lang::Ko,
        }
    }

    pub fn catalog(self) -> &'static Catalog {
        static KO: OnceLock<Catalog> = OnceLock::new();
        static EN: OnceLock<Catalog> = OnceLock::new();
        match self {
            Lang::Ko => KO.get_or_init(|| Catalog::from_toml(Lang::Ko, KO_TOML)),
            Lang::En => EN.get_or_init(|| Catalog::from_toml(Lang::En, EN_TOML)),
        }
    }

    /// Picks the language of one response (see the module invariants).
    pub fn negotiate(
        query: Option<&str>,
        cookie: Option<&str>,
        accept_language: Option<&str>,
        default: Lang,
    ) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| accept_language.and_then(from_accept_language))
            .unwrap_or(default)
    }
}

/// The best of our languages in an Accept-Language header (RFC 9110 §12.5.4),
/// by q-value, earlier entries winning ties; `None` when neither is wanted.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for entry in header.split(',').take(32) {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::parse(primary) else {
            continue;
        };
        let mut quality = 1000u16;
        for param in parts {
            if let Some(q) = param.trim().strip_prefix("q=") {
                quality = parse_qvalue(q).unwrap_or(0);
            }
        }
        if quality > 0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((lang, quality));
        }
    }
    best.map(|(lang, _)| lang)
}

/// A q-value as thousandths ("0.8" is 800); `None` when malformed.
fn parse_qvalue(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    if (0.0..=1.0).contains(&value) {
        Some((value * 1000.0).round() as u16)
    } else {
        None
    }
}

/// The strings of one language, by dotted key ("login.title").
#[derive(Debug)]
pub struct Catalog {
    lang: Lang,
    strings: HashMap<String, String>,
}

impl Catalog {
    fn from_toml(lang: Lang, text: &str) -> Catalog {
        let strings = match flatten_toml(text) {
            Ok(strings) => strings,
            Err(message) => {
                // Only reachable if a catalog in the source tree is broken,
                // which the unit tests catch; pages then show the keys.
                tracing::error!(lang = lang.code(), %message, "string catalog is broken");
                HashMap::new()
            }
        };
        Catalog { lang, strings }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The string for `key`; the key itself if missing (never panics).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        match self.strings.get(key) {
            Some(text) => text,
            None => {
                tracing::warn!(lang = self.lang.code(), key, "missing catalog string");
                key
            }
        }
    }

    /// The string for `key` with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_string();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// All keys, for the parity test.
    #[cfg(test)]
    fn keys(&self) -> std::collections::BTreeSet<&str> {
        self.strings.keys().map(String::as_str).collect()
    }
}

/// Turns `[section] key = "text"` into `"section.key" -> "text"`.
fn flatten_toml(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = HashMap::new();
    flatten_into(&mut out, "", &table)?;
    Ok(out)
}

fn flatten_into(
    out: &mut HashMap<String, String>,
    prefix: &str,
    table: &toml::Table,
) -> Result<(), String> {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::String(text) => {
                out.insert(full, text.clone());
            }
            toml::Value::Table(inner) => flatten_into(out, &full, inner)?,
            _ => return Err(format!("{full}: only strings and tables are allowed")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_parse_and_have_the_same_keys() {
        let ko = flatten_toml(KO_TOML).expect("ko.toml parses");
        let en = flatten_toml(EN_TOML).expect("en.toml parses");
        assert!(!ko.is_empty());
        let ko_keys = Lang::Ko.catalog().keys();
        let en_keys = Lang::En.catalog().keys();
        let only_ko: Vec<_> = ko_keys.difference(&en_keys).collect();
        let only_en: Vec<_> = en_keys.difference(&ko_keys).collect();
        assert!(only_ko.is_empty(), "keys only in ko.toml: {only_ko:?}");
        assert!(only_en.is_empty(), "keys only in en.toml: {only_en:?}");
        assert_eq!(ko.len(), en.len());
    }

    #[test]
    fn every_key_named_in_templates_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/webmail");
        let keys = Lang::Ko.catalog().keys();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("templates/webmail exists") {
            let path = entry.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("template readable");
            for piece in text.split("t.get(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or("");
                assert!(keys.contains(key), "{}: unknown key {key}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 10, "templates name catalog keys");
    }

    #[test]
    fn placeholders_are_filled() {
        let text = Lang::En.catalog().fill("nav.unread", &[("count", "3")]);
        assert_eq!(text, "3 unread");
    }

    #[test]
    fn language_negotiation_order() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("ko"), None, Lang::Ko),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(Some("fr"), Some("en"), None, Lang::Ko),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("en-US,en;q=0.9,ko;q=0.8"), Lang::Ko),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("fr, en;q=0.5, ko-KR;q=0.7"), Lang::En),
            Lang::Ko
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("en;q=0, de"), Lang::Ko),
            Lang::Ko
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("en;q=banana"), Lang::Ko),
            Lang::Ko
        );
        assert_eq!(Lang::negotiate(None, None, None, Lang::En), Lang::En);
    }
}
