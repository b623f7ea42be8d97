//! What can be wrong with one line of a user file (`import.rs`, `csv.rs`):
//! one variant per reason with the values it names, so the CLI prints the
//! English text below and the console says the same in the page's
//! language (`web::console::transfer`).
//!
//! Owns nothing; values only.
//!
//! Reads untrusted input: it carries pieces of the admin's file (shown
//! escaped by the console, quoted by `{:?}` here).

use std::fmt;

use super::classes::MAX_CLASS_CHARS;
use super::password::MIN_PASSWORD_CHARS;
use super::user_admin::MAX_DISPLAY_NAME;

/// Most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    TextAfterQuote,
    QuoteInField,
    UnclosedQuote,
    EmptyFile,
    UnknownColumn(String),
    ColumnTwice(String),
    NoAddressColumn,
    FieldCount { fields: usize, columns: usize },
    TooManyRows,
    NoAddress,
    BadAddress(String),
    UnknownDomain(String),
    TwiceInFile { address: String, first_line: usize },
    IsAlias(String),
    UserExists(String),
    AddedMeanwhile(String),
    BadClass(String),
    ShortPassword,
    NameTooLong,
    NameHasControl,
    BadLeaveDate(String),
    BadState(String),
}

impl ProblemKind {
    /// The console catalog key (`cdir.imp_<key>`) and its values.
    pub fn catalog(&self) -> (&'static str, Vec<(&'static str, String)>) {
        use ProblemKind::*;
        let one = |k: &'static str, v: &str| vec![(k, v.to_string())];
        match self {
            TextAfterQuote => ("cdir.imp_text_after_quote", vec![]),
            QuoteInField => ("cdir.imp_quote_in_field", vec![]),
            UnclosedQuote => ("cdir.imp_unclosed_quote", vec![]),
            EmptyFile => ("cdir.imp_empty_file", vec![]),
            UnknownColumn(c) => ("cdir.imp_unknown_column", one("column", c)),
            ColumnTwice(c) => ("cdir.imp_column_twice", one("column", c)),
            NoAddressColumn => ("cdir.imp_no_address_column", vec![]),
            FieldCount { fields, columns } => (
                "cdir.imp_field_count",
                vec![
                    ("fields", fields.to_string()),
                    ("columns", columns.to_string()),
                ],
            ),
            TooManyRows => (
                "cdir.imp_too_many_rows",
                one("max", &MAX_IMPORT_ROWS.to_string()),
            ),
            NoAddress => ("cdir.imp_no_address", vec![]),
            BadAddress(a) => ("cdir.imp_bad_address", one("address", a)),
            UnknownDomain(d) => ("cdir.imp_unknown_domain", one("domain", d)),
            TwiceInFile {
                address,
                first_line,
            } => (
                "cdir.imp_twice_in_file",
                vec![
                    ("address", address.clone()),
                    ("line", first_line.to_string()),
                ],
            ),
            IsAlias(a) => ("cdir.imp_is_alias", one("address", a)),
            UserExists(a) => ("cdir.imp_user_exists", one("address", a)),
            AddedMeanwhile(a) => ("cdir.imp_added_meanwhile", one("address", a)),
            BadClass(c) => (
                "cdir.imp_bad_class",
                vec![("class", c.clone()), ("max", MAX_CLASS_CHARS.to_string())],
            ),
            ShortPassword => (
                "cdir.imp_short_password",
                one("min", &MIN_PASSWORD_CHARS.to_string()),
            ),
            NameTooLong => (
                "cdir.imp_name_too_long",
                one("max", &MAX_DISPLAY_NAME.to_string()),
            ),
            NameHasControl => ("cdir.imp_name_control", vec![]),
            BadLeaveDate(d) => ("cdir.imp_bad_leave_date", one("date", d)),
            BadState(s) => ("cdir.imp_bad_state", one("state", s)),
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProblemKind::*;
        match self {
            TextAfterQuote => write!(f, "text after a closing quote; a quoted field must end at the comma"),
            QuoteInField => write!(f, "a quote inside an unquoted field; quote the whole field and double the quote (\"a\"\"b\")"),
            UnclosedQuote => write!(f, "a quoted field is never closed"),
            EmptyFile => write!(f, "the file is empty; the first line must name the columns, e.g. address,class,password"),
            UnknownColumn(c) => write!(f, "unknown column {c:?}; the columns are address, class, password, display_name, leave_date and state"),
            ColumnTwice(c) => write!(f, "the column {c:?} is named twice"),
            NoAddressColumn => write!(f, "the header has no address column (e.g. address,class,password)"),
            FieldCount { fields, columns } => write!(
                f,
                "{fields} field{}, but the header names {columns} columns",
                if *fields == 1 { "" } else { "s" }
            ),
            TooManyRows => write!(f, "more than {MAX_IMPORT_ROWS} users; split the file"),
            NoAddress => write!(f, "no address"),
            BadAddress(a) => write!(f, "{a:?} is not a valid mail address (expected name@domain)"),
            UnknownDomain(d) => write!(f, "the domain {d} is not served here; add it first with `campusmail domain add {d}`"),
            TwiceInFile { address, first_line } => write!(f, "{address} is already on line {first_line}"),
            IsAlias(a) => write!(f, "{a} is an alias already"),
            UserExists(a) => write!(f, "the user {a} already exists (use --skip-existing to skip such rows)"),
            AddedMeanwhile(a) => write!(f, "{a} was added while the import ran"),
            BadClass(c) => write!(f, "{c:?} is not a class name (letters, digits, - and _, at most {MAX_CLASS_CHARS})"),
            ShortPassword => write!(f, "the password is shorter than {MIN_PASSWORD_CHARS} characters"),
            NameTooLong => write!(f, "display_name: the name is longer than {MAX_DISPLAY_NAME} characters"),
            NameHasControl => write!(f, "display_name: the name holds a control character (a line break or tab); type it on one line"),
            BadLeaveDate(d) => write!(f, "leave_date: {d:?} is not a date; write it as YYYY-MM-DD (e.g. 2027-02-28)"),
            BadState(s) => write!(f, "state {s:?} is neither enabled nor disabled (or leave it empty)"),
        }
    }
}
