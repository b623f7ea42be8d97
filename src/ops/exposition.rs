//! The Prometheus text exposition format (version 0.0.4): `# HELP` and
//! `# TYPE` once per metric family, then one line per sample.
//!
//! Owns: escaping (help text: `\` and newline; label values: `\`, `"` and
//! newline) and number formatting, so no caller writes the format by hand.
//!
//! Invariants:
//! - A family is announced once, before its samples; samples of a family
//!   are written together (the format requires it).
//! - Counter names end in `_total`.
//!
//! Reads untrusted input: label values may hold paths and names; they are
//! escaped.

use std::fmt::Write as _;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Builds one exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// The samples of one family.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts the family `name`.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"));
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        Family {
            out: &mut self.out,
            name,
        }
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &'static str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help).sample(&[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{name}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whole numbers without a fraction; the format's spellings otherwise.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_with_escaped_labels() {
        let mut e = Exposition::new();
        e.family(
            "campusmail_messages_total",
            Kind::Counter,
            "Messages.\nSecond line \\ here",
        )
        .sample(&[("event", "accepted")], 3.0)
        .sample(&[("event", "delivered")], 2.0);
        e.family("campusmail_store_bytes", Kind::Gauge, "Bytes.")
            .sample(&[("dir", "/srv/a\"b\\c\nd")], 1.5);
        e.single("campusmail_up", Kind::Gauge, "Up.", 1.0);
        assert_eq!(
            e.finish(),
            "# HELP campusmail_messages_total Messages.\\nSecond line \\\\ here\n\
             # TYPE campusmail_messages_total counter\n\
             campusmail_messages_total{event=\"accepted\"} 3\n\
             campusmail_messages_total{event=\"delivered\"} 2\n\
             # HELP campusmail_store_bytes Bytes.\n\
             # TYPE campusmail_store_bytes gauge\n\
             campusmail_store_bytes{dir=\"/srv/a\\\"b\\\\c\\nd\"} 1.5\n\
             # HELP campusmail_up Up.\n\
             # TYPE campusmail_up gauge\n\
             campusmail_up 1\n"
        );
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(-2.0), "-2");
    }
}
