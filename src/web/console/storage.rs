//! `GET /admin/storage`: the mail store per data directory (R5, R17):
//! bytes stored, garbage waiting for compaction, blobs, free space, reads
//! and writes since the start, and whether a directory is being drained.
//! Read-only; changes are `campusmail store ...` commands (admin guide §9).

use askama::Template;

use super::pages::{problem, ConsoleChrome, Problem};
use super::{Console, Ctx};
use crate::store::stats::human_bytes;
use crate::web::i18n::Catalog;
use crate::web::session::Session;
use crate::web::webmail::pages::render;

pub struct DiskRow {
    pub path: String,
    pub weight: u32,
    pub state: String,
    pub stored: String,
    pub garbage: String,
    pub blobs: u64,
    pub free: String,
    pub reads: u64,
    pub writes: u64,
    /// Share of the file system in use, for the meter (0-100).
    pub used_percent: Option<u64>,
    /// Its share of the stored bytes beside the share its weight asks for.
    pub balance: String,
}

#[derive(Template)]
#[template(path = "console/storage.html")]
struct StoragePage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    summary: String,
    disks: Vec<DiskRow>,
    /// When `store fsck` last ran and what it found.
    last_check: String,
    /// The last check found problems that are still to be repaired.
    check_warning: bool,
}

pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let stats = match console.store.stats() {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "store statistics failed");
            return problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let stored: u64 = stats.disks.iter().map(|d| d.bytes).sum();
    let weights: u64 = stats
        .disks
        .iter()
        .filter(|d| !d.draining)
        .map(|d| u64::from(d.weight))
        .sum();
    let disks = stats
        .disks
        .iter()
        .map(|d| DiskRow {
            balance: balance(
                t,
                d.bytes,
                stored,
                if d.draining { 0 } else { d.weight },
                weights,
            ),
            path: d.path.display().to_string(),
            weight: d.weight,
            state: t
                .get(if d.draining {
                    "console.storage_draining"
                } else {
                    "console.storage_in_use"
                })
                .to_string(),
            stored: human_bytes(d.bytes),
            garbage: human_bytes(d.garbage),
            blobs: d.blobs,
            free: match (d.free, d.total) {
                (Some(free), Some(total)) => t.fill(
                    "console.storage_free_of",
                    &[("free", &human_bytes(free)), ("total", &human_bytes(total))],
                ),
                _ => "-".into(),
            },
            reads: d.reads,
            writes: d.writes,
            used_percent: match (d.free, d.total) {
                (Some(free), Some(total)) if total > 0 => {
                    Some(((total - free.min(total)) as u128 * 100 / total as u128) as u64)
                }
                _ => None,
            },
        })
        .collect();
    let (last_check, check_warning) = match console.store.last_fsck() {
        Ok(Some(last)) => (
            t.fill(
                if last.problems > last.repaired {
                    "console.storage_check_problems"
                } else {
                    "console.storage_check_clean"
                },
                &[
                    ("when", &crate::web::format::date_time(last.at)),
                    ("messages", &last.messages.to_string()),
                    ("problems", &last.problems.to_string()),
                    ("repaired", &last.repaired.to_string()),
                ],
            ),
            last.problems > last.repaired,
        ),
        Ok(None) => (t.get("console.storage_check_never").to_string(), false),
        Err(err) => {
            tracing::warn!(%err, "last fsck unreadable");
            (t.get("console.storage_check_never").to_string(), false)
        }
    };
    let page = StoragePage {
        last_check,
        check_warning,
        t,
        chrome: ConsoleChrome::new(t, "console.storage_title", "/admin/storage", Some(session)),
        summary: t.fill(
            "console.storage_summary",
            &[
                ("messages", &stats.messages.to_string()),
                ("blobs", &stats.blobs.to_string()),
            ],
        ),
        disks,
    };
    render(200, &page)
}

/// "27% (target 25%)": a directory's share of the stored bytes and of
/// the weights (a draining directory's target is 0).
fn balance(t: &Catalog, bytes: u64, stored: u64, weight: u32, weights: u64) -> String {
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            0
        } else {
            (u128::from(part) * 100 / u128::from(whole)) as u64
        }
    };
    t.fill(
        "console.storage_balance",
        &[
            ("share", &percent(bytes, stored).to_string()),
            ("target", &percent(u64::from(weight), weights).to_string()),
        ],
    )
}

use crate::web::http::Reply;
