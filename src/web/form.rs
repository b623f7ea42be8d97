//! Strict parsing of `application/x-www-form-urlencoded` bodies and query
//! strings (WHATWG URL §5.1, minus its leniency).
//!
//! Owns: nothing; pure functions.
//!
//! Invariants:
//! - Input larger than the caller's limit, a `%` not followed by two hex
//!   digits, bytes that do not decode to UTF-8, a repeated field name or too
//!   many fields are errors, never guessed at. Handlers turn every error into
//!   a clear 400 (or 413) page.
//!
//! Reads untrusted input: yes, every form body and query string.

/// Most fields a form or query may carry.
pub const MAX_FIELDS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form data is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed percent-encoding")]
    BadPercent,
    #[error("form data is not UTF-8")]
    NotUtf8,
    #[error("field {0:?} appears more than once")]
    Repeated(String),
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("the body is not application/x-www-form-urlencoded")]
    WrongContentType,
}

/// The decoded fields of one form or query, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Parses `input`, refusing anything longer than `limit` bytes.
    pub fn parse(input: &[u8], limit: usize) -> Result<Form, FormError> {
        Form::parse_repeating(input, limit, &[], 0)
    }

    /// Like `parse`, but the fields named in `repeatable` may appear up to
    /// `max_repeats` times in all (e.g. one checkbox per listed message),
    /// beside the usual `MAX_FIELDS` others. Read them with `all`.
    pub fn parse_repeating(
        input: &[u8],
        limit: usize,
        repeatable: &[&str],
        max_repeats: usize,
    ) -> Result<Form, FormError> {
        if input.len() > limit {
            return Err(FormError::TooLarge { limit });
        }
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut repeats = 0;
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            if fields.len() - repeats == MAX_FIELDS {
                return Err(FormError::TooManyFields);
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if repeatable.contains(&name.as_str()) {
                if repeats == max_repeats {
                    return Err(FormError::TooManyFields);
                }
                repeats += 1;
            } else if fields.iter().any(|(n, _)| *n == name) {
                return Err(FormError::Repeated(name));
            }
            fields.push((name, value));
        }
        Ok(Form { fields })
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one name or value: `+` is a space, `%XX` a byte.
fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex(*b));
                let lo = raw.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(FormError::BadPercent),
                }
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes `text` for use as one query value or path segment.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_login_form() {
        let form = Form::parse(
            b"address=hong%40example.ac.kr&password=a+b%2Bc%26&csrf_token=xyz",
            1024,
        )
        .unwrap();
        assert_eq!(form.get("address"), Some("hong@example.ac.kr"));
        assert_eq!(form.get("password"), Some("a b+c&"));
        assert_eq!(form.get("csrf_token"), Some("xyz"));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn decodes_korean_and_empty_values() {
        let form = Form::parse(b"q=%ED%95%9C%EA%B8%80&empty=&flag", 1024).unwrap();
        assert_eq!(form.get("q"), Some("한글"));
        assert_eq!(form.get("empty"), Some(""));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(Form::parse(b"", 10).unwrap(), Form::default());
    }

    #[test]
    fn rejects_malformed_percent_encoding() {
        for bad in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%4g", b"%=1"] {
            assert_eq!(
                Form::parse(bad, 1024),
                Err(FormError::BadPercent),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(Form::parse(b"a=%FF%FE", 1024), Err(FormError::NotUtf8));
        assert_eq!(Form::parse(b"a=\xff", 1024), Err(FormError::NotUtf8));
    }

    #[test]
    fn rejects_oversize_repeated_and_too_many() {
        assert_eq!(
            Form::parse(&[b'a'; 65], 64),
            Err(FormError::TooLarge { limit: 64 })
        );
        assert_eq!(
            Form::parse(b"a=1&a=2", 1024),
            Err(FormError::Repeated("a".into()))
        );
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("f{i}=1")).collect();
        assert_eq!(
            Form::parse(many.join("&").as_bytes(), 1 << 20),
            Err(FormError::TooManyFields)
        );
    }

    #[test]
    fn repeatable_fields_are_counted_apart() {
        let form = Form::parse_repeating(b"m=a&m=b&x=1", 1024, &["m"], 2).unwrap();
        assert_eq!(form.all("m").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(form.get("x"), Some("1"));
        assert_eq!(
            Form::parse_repeating(b"m=a&m=b&m=c", 1024, &["m"], 2),
            Err(FormError::TooManyFields)
        );
        assert_eq!(
            Form::parse_repeating(b"x=1&x=2", 1024, &["m"], 2),
            Err(FormError::Repeated("x".into()))
        );
        let many: Vec<String> = (0..300).map(|i| format!("m=n{i}")).collect();
        let form = Form::parse_repeating(many.join("&").as_bytes(), 1 << 20, &["m"], 500).unwrap();
        assert_eq!(form.all("m").count(), 300);
    }

    #[test]
    fn encode_round_trips() {
        let text = "hong@example.ac.kr/한글 &=?";
        let encoded = encode(text);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        let form = Form::parse(format!("x={encoded}").as_bytes(), 1024).unwrap();
        assert_eq!(form.get("x"), Some(text));
    }
}
