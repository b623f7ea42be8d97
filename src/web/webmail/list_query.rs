//! Where a message list is: folder, sort order and page, read strictly
//! from a query or form, and written back into links so paging keeps the
//! folder and sort, and an action returns to the page it came from.
//!
//! Owns: the list URL's spelling (`/mail?folder=..&sort=..&order=..&page=..`,
//! defaults left out) and the sort links of the column headers; and which
//! view the URL names (`view=messages` or `view=conversations`; without
//! one, `/mail` opens the view saved in the user's settings). A flat list
//! reached by `view=messages` keeps it in its links, so paging and sorting
//! stay in it even when the saved view is the grouped one.
//!
//! Reads untrusted input: the `folder`, `sort`, `order`, `page` and `view`
//! values; anything but the known spellings is refused (`None`), never
//! guessed.

use crate::store::folders::INBOX;
use crate::store::{ListOrder, SortKey};
use crate::web::form::encode;

use super::mailbox::page_number;

/// Longest folder value accepted from a query (ids are much shorter).
const MAX_FOLDER_VALUE: usize = 100;

/// How `/mail` lists a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListView {
    /// One row per message (sortable by any column).
    Messages,
    /// One row per conversation (`conversation_list`), by date.
    Conversations,
}

impl ListView {
    /// The `view=` value.
    pub fn name(self) -> &'static str {
        match self {
            ListView::Messages => "messages",
            ListView::Conversations => "conversations",
        }
    }

    fn parse(text: &str) -> Option<ListView> {
        [ListView::Messages, ListView::Conversations]
            .into_iter()
            .find(|v| v.name() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub folder: String,
    pub key: SortKey,
    pub descending: bool,
    pub page: usize,
    /// The view the URL names; `None`: the user's saved one.
    pub view: Option<ListView>,
}

/// Newest date first and largest first; names from A.
fn default_descending(key: SortKey) -> bool {
    matches!(key, SortKey::Date | SortKey::Size)
}

pub fn key_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Date => "date",
        SortKey::From => "from",
        SortKey::Subject => "subject",
        SortKey::Size => "size",
    }
}

fn parse_key(text: &str) -> Option<SortKey> {
    Some(match text {
        "date" => SortKey::Date,
        "from" => SortKey::From,
        "subject" => SortKey::Subject,
        "size" => SortKey::Size,
        _ => return None,
    })
}

impl ListQuery {
    /// From the fields of a query or form; `None` when any is malformed.
    /// The folder is not checked against the store here.
    pub fn from_fields<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<ListQuery> {
        let folder = match get("folder") {
            None | Some("") => INBOX.to_string(),
            Some(f) if f.len() <= MAX_FOLDER_VALUE => f.to_string(),
            Some(_) => return None,
        };
        let key = match get("sort") {
            None | Some("") => SortKey::Date,
            Some(k) => parse_key(k)?,
        };
        let descending = match get("order") {
            None | Some("") => default_descending(key),
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return None,
        };
        let page = page_number(get("page").filter(|p| !p.is_empty()))?;
        let view = match get("view") {
            None | Some("") => None,
            Some(v) => Some(ListView::parse(v)?),
        };
        Some(ListQuery {
            folder,
            key,
            descending,
            page,
            view,
        })
    }

    pub fn order(&self) -> ListOrder {
        ListOrder {
            key: self.key,
            descending: self.descending,
        }
    }

    /// The flat list's URL of page `page`, defaults left out (the grouped
    /// view's URLs are `conversation_list::href`).
    pub fn href(&self, page: usize) -> String {
        let mut parts = Vec::new();
        if self.view == Some(ListView::Messages) {
            parts.push(format!("view={}", ListView::Messages.name()));
        }
        if self.folder != INBOX {
            parts.push(format!("folder={}", encode(&self.folder)));
        }
        if self.key != SortKey::Date {
            parts.push(format!("sort={}", key_name(self.key)));
        }
        if self.descending != default_descending(self.key) {
            parts.push(format!(
                "order={}",
                if self.descending { "desc" } else { "asc" }
            ));
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            "/mail".to_string()
        } else {
            format!("/mail?{}", parts.join("&"))
        }
    }

    /// The link of a column header: this order reversed when it is the
    /// current one, else that order's usual direction; always page 1.
    pub fn sort_href(&self, key: SortKey) -> String {
        let descending = if key == self.key {
            !self.descending
        } else {
            default_descending(key)
        };
        ListQuery {
            folder: self.folder.clone(),
            key,
            descending,
            page: 1,
            view: self.view,
        }
        .href(1)
    }

    /// `aria-sort` of a column header.
    pub fn aria_sort(&self, key: SortKey) -> &'static str {
        match (key == self.key, self.descending) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Option<ListQuery> {
        let form = crate::web::form::Form::parse(q.as_bytes(), 1024).ok()?;
        ListQuery::from_fields(|k| form.get(k))
    }

    #[test]
    fn defaults_and_round_trips() {
        let q = parse("").unwrap();
        assert_eq!(q.href(1), "/mail");
        assert_eq!(q.href(3), "/mail?page=3");
        let q = parse("folder=node-a.2a&sort=from&page=2").unwrap();
        assert!(!q.descending);
        assert_eq!(q.href(2), "/mail?folder=node-a.2a&sort=from&page=2");
        assert_eq!(parse(&q.href(2)[6..]), Some(q.clone()));
        assert_eq!(
            q.sort_href(SortKey::From),
            "/mail?folder=node-a.2a&sort=from&order=desc"
        );
        assert_eq!(
            q.sort_href(SortKey::Size),
            "/mail?folder=node-a.2a&sort=size"
        );
        assert_eq!(q.aria_sort(SortKey::From), "ascending");
        assert_eq!(q.aria_sort(SortKey::Date), "none");
    }

    #[test]
    fn a_named_view_is_kept_in_the_flat_lists_links() {
        let q = parse("view=messages&sort=subject&page=2").unwrap();
        assert_eq!(q.view, Some(ListView::Messages));
        assert_eq!(q.href(3), "/mail?view=messages&sort=subject&page=3");
        assert_eq!(q.sort_href(SortKey::From), "/mail?view=messages&sort=from");
        assert_eq!(parse(&q.href(2)[6..]), Some(q));
        let q = parse("view=conversations&order=asc").unwrap();
        assert_eq!(q.view, Some(ListView::Conversations));
        assert!(!q.descending);
        assert_eq!(parse("").unwrap().view, None);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "sort=name",
            "order=up",
            "page=0",
            "page=x",
            "sort=DATE",
            "view=threads",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse(&format!("folder={}", "a".repeat(101))), None);
    }
}
