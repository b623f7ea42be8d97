//! `campusmail user import FILE`: many users at once from a CSV file (the
//! 30,000 students of a new term, R12).
//!
//! Owns no state of its own. It reads the file (`read_rows`, `parse_csv`),
//! and `Directory::import_users` checks every row and then writes them all.
//!
//! The file: UTF-8 (a byte-order mark, as spreadsheet programs write, is
//! skipped), a header line naming the columns in any order, then one user per
//! line. Columns: `address` (required), `class` (optional; empty means the
//! class `user add` gives, `default`), `password` (optional; empty means
//! the account cannot log in until `campusmail user passwd` sets one),
//! `display_name` and `leave_date` (optional, YYYY-MM-DD), and `state`
//! (optional: `enabled`, the default, or `disabled`). The export
//! (`export.rs`) writes the same columns, without passwords. Fields
//! may be quoted as RFC 4180 says (`"a,b"`, `"say ""hi"""`); blank lines are
//! skipped. Line numbers in reports are the file's own, header = line 1.
//!
//! Invariants:
//! - All or nothing: if any row has a problem (bad address, unknown domain,
//!   a duplicate in the file or in the directory, bad class, short
//!   password), nothing is imported and every problem is reported with its
//!   line. With `skip_existing`, rows whose user already exists are skipped
//!   instead (so the same file can be loaded again after adding rows).
//! - The rows are written as one sled batch (atomic), flushed once, and the
//!   engine's snapshot is published once, after the last row.
//! - Passwords are hashed (argon2id, in parallel) before the directory's
//!   write lock is taken; under the lock only the existence checks are
//!   repeated, so a `user add` racing the import cannot be overwritten.
//! - A row without a password stores [`NO_PASSWORD`], which never verifies.
//!
//! Reads untrusted input: the admin's file. Sizes are bounded
//! (`MAX_IMPORT_BYTES`, `MAX_IMPORT_ROWS`); nothing in it can panic.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::address::{domain_of, normalize_address};
use super::classes::{checked_class_name, checked_leave_date};
use super::csv::records;
use super::import_problem::ProblemKind;
use super::password::{self, MIN_PASSWORD_CHARS, NO_PASSWORD};
use super::refusal::Refusal;
use super::user_admin::checked_display_name;
use super::{Directory, DirectoryError, UserRecord};

/// Largest file `read_rows` accepts (30,000 rows take about 2 MB).
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;
pub use super::import_problem::MAX_IMPORT_ROWS;
/// Problems listed in a report; the rest are counted.
const MAX_LISTED_PROBLEMS: usize = 100;

/// One user row of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRow {
    /// Line of the file where the row starts (header = 1).
    pub line: usize,
    pub address: String,
    pub class: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub leave_date: Option<String>,
    /// "enabled" (or None) / "disabled".
    #[serde(default)]
    pub state: Option<String>,
}

/// What `campusmail user import` sends to the directory (in-process, or
/// through the control socket when the appliance runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub rows: Vec<ImportRow>,
    /// Skip rows whose user exists instead of refusing the file.
    pub skip_existing: bool,
}

/// One thing wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: usize,
    pub kind: ProblemKind,
}

/// Every problem found; Display is the report the admin reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblems {
    pub problems: Vec<RowProblem>,
    pub rows: usize,
}

impl fmt::Display for ImportProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "nothing was imported: {n} problem{} in {} row{} (fix the file and run the import again)",
            if n == 1 { "" } else { "s" },
            self.rows,
            if self.rows == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(MAX_LISTED_PROBLEMS) {
            write!(f, "\n  line {}: {}", p.line, p.kind)?;
        }
        if n > MAX_LISTED_PROBLEMS {
            write!(f, "\n  ... and {} more", n - MAX_LISTED_PROBLEMS)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_IMPORT_BYTES} bytes; split it into several files")]
    TooLarge { path: String },
    #[error("{path} is not UTF-8 text; save it as \"CSV UTF-8\"")]
    NotUtf8 { path: String },
    #[error("{0}")]
    Problems(ImportProblems),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub with_password: usize,
    pub skipped_existing: usize,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let without = self.created - self.with_password;
        write!(
            f,
            "imported {} user{}: {} with a password, {} without",
            self.created,
            if self.created == 1 { "" } else { "s" },
            self.with_password,
            without
        )?;
        if without > 0 {
            write!(
                f,
                " (they cannot log in until `campusmail user passwd` sets one)"
            )?;
        }
        if self.skipped_existing > 0 {
            write!(
                f,
                "\nskipped {} row{} whose user already exists",
                self.skipped_existing,
                if self.skipped_existing == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// Reads and parses `path` (`-` = standard input).
pub fn read_rows(path: &Path) -> Result<Vec<ImportRow>, ImportFileError> {
    let name = path.display().to_string();
    let read_err = |source| ImportFileError::Read {
        path: name.clone(),
        source,
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_IMPORT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_IMPORT_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_err)?;
    }
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(ImportFileError::TooLarge { path: name });
    }
    let text = String::from_utf8(bytes).map_err(|_| ImportFileError::NotUtf8 { path: name })?;
    parse_csv(&text).map_err(ImportFileError::Problems)
}

fn is_blank(fields: &[String]) -> bool {
    fields.iter().all(|f| f.trim().is_empty())
}

/// Parses the whole file; every syntax problem is reported, not just the first.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, ImportProblems> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail = |problems: Vec<RowProblem>, rows| Err(ImportProblems { problems, rows });
    let mut records = match records(text) {
        Ok(r) => r.into_iter().filter(|(_, f)| !is_blank(f)),
        Err(p) => return fail(vec![p], 0),
    };
    let Some((header_line, header)) = records.next() else {
        return fail(
            vec![RowProblem {
                line: 1,
                kind: ProblemKind::EmptyFile,
            }],
            0,
        );
    };
    let mut problems = Vec::new();
    let (mut address, mut class, mut pass) = (None, None, None);
    let (mut name_col, mut leave_col, mut state_col) = (None, None, None);
    for (i, name) in header.iter().enumerate() {
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "address" => &mut address,
            "class" => &mut class,
            "password" => &mut pass,
            "display_name" => &mut name_col,
            "leave_date" => &mut leave_col,
            "state" => &mut state_col,
            other => {
                problems.push(RowProblem {
                    line: header_line,
                    kind: ProblemKind::UnknownColumn(other.to_string()),
                });
                continue;
            }
        };
        if slot.replace(i).is_some() {
            problems.push(RowProblem {
                line: header_line,
                kind: ProblemKind::ColumnTwice(name.trim().to_string()),
            });
        }
    }
    let Some(address) = address else {
        problems.push(RowProblem {
            line: header_line,
            kind: ProblemKind::NoAddressColumn,
        });
        return fail(problems, 0);
    };
    if !problems.is_empty() {
        return fail(problems, 0);
    }
    let mut rows = Vec::new();
    for (line, fields) in records {
        if fields.len() != header.len() {
            problems.push(RowProblem {
                line,
                kind: ProblemKind::FieldCount {
                    fields: fields.len(),
                    columns: header.len(),
                },
            });
            continue;
        }
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        rows.push(ImportRow {
            line,
            address: get(Some(address)).unwrap_or_default().trim().to_string(),
            class: get(class)
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
            password: get(pass),
            display_name: get(name_col),
            leave_date: get(leave_col),
            state: get(state_col).map(|s| s.trim().to_ascii_lowercase()),
        });
    }
    if rows.len() > MAX_IMPORT_ROWS {
        problems.push(RowProblem {
            line: rows.get(MAX_IMPORT_ROWS).map_or(0, |r| r.line),
            kind: ProblemKind::TooManyRows,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        let n = rows.len();
        fail(problems, n)
    }
}

/// A row that passed every check, before its password is hashed.
struct CheckedRow<'a> {
    line: usize,
    address: String,
    class: String,
    password: Option<&'a str>,
    display_name: Option<String>,
    leave_date: Option<String>,
    enabled: bool,
}

impl Directory {
    /// Imports `rows` all or nothing (see the module comment); with
    /// `skip_existing`, rows naming an existing user are skipped.
    pub fn import_users(
        &self,
        rows: &[ImportRow],
        skip_existing: bool,
    ) -> Result<ImportReport, DirectoryError> {
        let (checked, skipped) = self.check_import(rows, skip_existing)?;
        let hashes = hash_all(&checked)?;
        let now = chrono::Utc::now().timestamp();
        let mut batch = sled::Batch::default();
        let mut addresses = BTreeSet::new();
        for (row, hash) in checked.iter().zip(hashes) {
            let record = UserRecord {
                address: row.address.clone(),
                password_hash: hash.unwrap_or_else(|| NO_PASSWORD.to_string()),
                enabled: row.enabled,
                class: row.class.clone(),
                created_at: now,
                quota_bytes: None,
                quota_messages: None,
                display_name: row.display_name.clone(),
                leave_date: row.leave_date.clone(),
            };
            batch.insert(row.address.as_bytes(), serde_json::to_vec(&record)?);
            addresses.insert(row.address.as_str());
        }
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        // Repeated under the lock: someone may have added one meanwhile.
        let mut problems = Vec::new();
        for row in &checked {
            if self.users.contains_key(&row.address)? || self.aliases.contains_key(&row.address)? {
                problems.push(RowProblem {
                    line: row.line,
                    kind: ProblemKind::AddedMeanwhile(row.address.clone()),
                });
            }
        }
        if !problems.is_empty() {
            return Err(DirectoryError::ImportRefused(ImportProblems {
                problems,
                rows: rows.len(),
            }));
        }
        self.users.apply_batch(batch)?;
        self.commit()?;
        tracing::info!(users = addresses.len(), "users imported");
        Ok(ImportReport {
            created: checked.len(),
            with_password: checked.iter().filter(|r| r.password.is_some()).count(),
            skipped_existing: skipped,
        })
    }

    /// Checks every row; the rows to create and how many were skipped.
    fn check_import<'a>(
        &self,
        rows: &'a [ImportRow],
        skip_existing: bool,
    ) -> Result<(Vec<CheckedRow<'a>>, usize), DirectoryError> {
        let domains: BTreeSet<String> = self.domains()?.into_iter().collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        let mut checked = Vec::new();
        let mut skipped = 0;
        for row in rows {
            let mut problem = |kind: ProblemKind| {
                problems.push(RowProblem {
                    line: row.line,
                    kind,
                })
            };
            if row.address.is_empty() {
                problem(ProblemKind::NoAddress);
                continue;
            }
            let Some(address) = normalize_address(&row.address) else {
                problem(ProblemKind::BadAddress(row.address.clone()));
                continue;
            };
            let domain = domain_of(&address);
            if !domains.contains(domain) {
                problem(ProblemKind::UnknownDomain(domain.to_string()));
                continue;
            }
            if let Some(first) = seen.insert(address.clone(), row.line) {
                problem(ProblemKind::TwiceInFile {
                    address,
                    first_line: first,
                });
                continue;
            }
            if self.aliases.contains_key(&address)? {
                problem(ProblemKind::IsAlias(address));
                continue;
            }
            if self.users.contains_key(&address)? {
                if skip_existing {
                    skipped += 1;
                } else {
                    problem(ProblemKind::UserExists(address));
                }
                continue;
            }
            let class = match row.class.as_deref() {
                None => "default".to_string(),
                Some(c) => match checked_class_name(c) {
                    Some(c) => c,
                    None => {
                        problem(ProblemKind::BadClass(c.to_string()));
                        continue;
                    }
                },
            };
            if let Some(pw) = &row.password {
                if pw.chars().count() < MIN_PASSWORD_CHARS {
                    problem(ProblemKind::ShortPassword);
                    continue;
                }
            }
            let display_name = match row.display_name.as_deref().map(checked_display_name) {
                None => None,
                Some(Ok(name)) => name,
                Some(Err(DirectoryError::Refused(Refusal::NameTooLong))) => {
                    problem(ProblemKind::NameTooLong);
                    continue;
                }
                Some(Err(_)) => {
                    problem(ProblemKind::NameHasControl);
                    continue;
                }
            };
            let leave_date = match row.leave_date.as_deref().map(checked_leave_date) {
                None => None,
                Some(Ok(date)) => date,
                Some(Err(_)) => {
                    problem(ProblemKind::BadLeaveDate(
                        row.leave_date.clone().unwrap_or_default(),
                    ));
                    continue;
                }
            };
            let enabled = match row.state.as_deref() {
                None | Some("enabled") => true,
                Some("disabled") => false,
                Some(other) => {
                    problem(ProblemKind::BadState(other.to_string()));
                    continue;
                }
            };
            checked.push(CheckedRow {
                line: row.line,
                address,
                class,
                password: row.password.as_deref(),
                display_name,
                leave_date,
                enabled,
            });
        }
        if problems.is_empty() {
            Ok((checked, skipped))
        } else {
            Err(DirectoryError::ImportRefused(ImportProblems {
                problems,
                rows: rows.len(),
            }))
        }
    }
}

/// Hashes every row's password on all cores; `None` for rows without one.
fn hash_all(rows: &[CheckedRow<'_>]) -> Result<Vec<Option<String>>, DirectoryError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<Option<String>>, password::PasswordError>> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = rows
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|r| r.password.map(password::hash_password).transpose())
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(password::PasswordError::Hash(
                            "a hashing thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
    let mut out = Vec::with_capacity(rows.len());
    for part in results {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
