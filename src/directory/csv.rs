//! The CSV text of user files (RFC 4180): splitting records for the
//! import, quoting fields for the export.
//!
//! Owns nothing; pure functions.
//!
//! Invariants: `records` never panics and reports the line of a quoting
//! mistake; `quote` output read back by `records` gives the same field.
//!
//! Reads untrusted input: yes, the admin's file (sizes bounded by the caller).

use super::import::RowProblem;
use super::import_problem::ProblemKind;

/// One CSV record: the line it starts on and its fields.
pub type Record = (usize, Vec<String>);

/// Splits `text` into records (RFC 4180 quoting; CRLF or LF line ends).
pub fn records(text: &str) -> Result<Vec<Record>, RowProblem> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start = 1usize;
    let mut chars = text.chars().peekable();
    // States: at a field's start, inside an unquoted field, inside quotes,
    // just after a closing quote.
    let (mut quoted, mut after_quote, mut at_start) = (false, false, true);
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    after_quote = true;
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                (after_quote, at_start) = (false, true);
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                out.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
                (after_quote, at_start) = (false, true);
            }
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            _ if after_quote => {
                return Err(RowProblem {
                    line,
                    kind: ProblemKind::TextAfterQuote,
                });
            }
            '"' => {
                return Err(RowProblem {
                    line,
                    kind: ProblemKind::QuoteInField,
                });
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(RowProblem {
            line: start,
            kind: ProblemKind::UnclosedQuote,
        });
    }
    if !field.is_empty() || !fields.is_empty() || after_quote {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

/// One field as RFC 4180 writes it: quoted when it holds a comma, a quote
/// or a line break (quotes doubled). A field that a spreadsheet would run
/// as a formula (starting with `=`, `+`, `-`, `@`) gets a leading `'`, as
/// the OWASP advice on CSV injection says; only display names can start so.
pub fn quote(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_string()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_read_back() {
        for field in ["plain", "a,b", "say \"hi\"", "two\nlines", "홍길동"] {
            let line = format!("{},x\n", quote(field));
            let recs = records(&line).unwrap();
            assert_eq!(recs, vec![(1, vec![field.to_string(), "x".to_string()])]);
        }
        assert_eq!(quote("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
