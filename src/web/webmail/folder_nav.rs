//! The folder list every mail page shows (system folders, then the user's
//! own, nested), and how a folder is named and linked.
//!
//! Owns: the drawing of the folder tree from the store's converged state.
//! A folder whose parent is gone, or which sits in a cycle made by two
//! nodes renaming at once (`store::folders`), is drawn at the top level,
//! so every live folder is always reachable.
//!
//! Reads untrusted input: the `folder` query value (checked against the
//! store; never used to build anything but a store key and an escaped link).

use std::collections::{HashMap, HashSet};

use crate::store::folders::{DRAFTS, INBOX, JUNK, SENT, SYSTEM_FOLDERS, TRASH};
use crate::store::{Store, StoreError, UserFolder};
use crate::web::form::encode;
use crate::web::i18n::Catalog;

/// One line of the folder list.
pub struct FolderLink {
    pub id: String,
    pub href: String,
    pub name: String,
    /// Unread messages (0 = none shown).
    pub unread: u64,
    /// "3 unread", for screen readers.
    pub unread_text: String,
    /// 0 for top-level folders.
    pub depth: usize,
    pub current: bool,
}

/// The catalog key of a system folder's name.
pub fn system_title(folder: &str) -> Option<&'static str> {
    match folder {
        INBOX => Some("inbox.title"),
        SENT => Some("sent.title"),
        DRAFTS => Some("drafts.title"),
        JUNK => Some("junk.title"),
        TRASH => Some("trash.title"),
        _ => None,
    }
}

/// The list page of a folder.
pub fn list_href(folder: &str) -> String {
    if folder == INBOX {
        "/mail".to_string()
    } else {
        format!("/mail?folder={}", encode(folder))
    }
}

/// A folder's parent as drawn: None when missing, or when the folder is
/// in a cycle (walking up comes back to it); a cycle further up is drawn
/// on top by its own members.
fn drawn_parent<'a>(by_id: &HashMap<&str, &'a UserFolder>, f: &'a UserFolder) -> Option<&'a str> {
    let parent = f.parent.as_deref()?;
    by_id.get(parent)?;
    let mut seen = HashSet::new();
    let mut at = Some(parent);
    while let Some(here) = at {
        if here == f.id {
            return None;
        }
        if !seen.insert(here) {
            break;
        }
        at = by_id.get(here).and_then(|p| p.parent.as_deref());
    }
    Some(parent)
}

/// User folders in display order (depth first, by name) with their depth.
pub fn tree(folders: &[UserFolder]) -> Vec<(&UserFolder, usize)> {
    let by_id: HashMap<&str, &UserFolder> = folders.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut children: HashMap<Option<&str>, Vec<&UserFolder>> = HashMap::new();
    for f in folders {
        children.entry(drawn_parent(&by_id, f)).or_default().push(f);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    }
    let mut out = Vec::with_capacity(folders.len());
    let mut stack: Vec<(&UserFolder, usize)> = children
        .get(&None)
        .map(|v| v.iter().rev().map(|f| (*f, 0)).collect())
        .unwrap_or_default();
    while let Some((f, depth)) = stack.pop() {
        out.push((f, depth));
        if let Some(kids) = children.get(&Some(f.id.as_str())) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    out
}

/// A folder's name for people: the catalog's for system folders, else the
/// user's. None when `folder` is neither.
pub fn display_name(t: &Catalog, folders: &[UserFolder], folder: &str) -> Option<String> {
    if let Some(key) = system_title(folder) {
        return Some(t.get(key).to_string());
    }
    folders
        .iter()
        .find(|f| f.id == folder)
        .map(|f| f.name.clone())
}

/// The folder list for `user`, with `current` marked.
pub fn links(
    store: &Store,
    t: &Catalog,
    user: &str,
    folders: &[UserFolder],
    current: Option<&str>,
) -> Result<Vec<FolderLink>, StoreError> {
    let mut out = Vec::new();
    let mut push = |id: &str, name: String, depth: usize| -> Result<(), StoreError> {
        let unread = store.folder_counts(user, id)?.unseen;
        out.push(FolderLink {
            id: id.to_string(),
            href: list_href(id),
            name,
            unread,
            unread_text: t.fill("folders.unread", &[("count", &unread.to_string())]),
            depth: depth.min(8),
            current: current == Some(id),
        });
        Ok(())
    };
    for id in SYSTEM_FOLDERS {
        push(id, display_name(t, &[], id).unwrap_or_default(), 0)?;
    }
    for (f, depth) in tree(folders) {
        push(&f.id, f.name.clone(), depth)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, name: &str, parent: Option<&str>) -> UserFolder {
        UserFolder {
            id: id.into(),
            name: name.into(),
            parent: parent.map(String::from),
        }
    }

    #[test]
    fn tree_nests_and_puts_orphans_and_cycles_on_top() {
        let folders = vec![
            f("a.1", "Work", None),
            f("a.2", "2025", Some("a.1")),
            f("a.3", "Alpha", Some("a.1")),
            f("a.4", "Lost", Some("a.99")),
            f("a.5", "Ping", Some("a.6")),
            f("a.6", "Pong", Some("a.5")),
            f("a.7", "Ball", Some("a.6")),
        ];
        let drawn: Vec<(&str, usize)> = tree(&folders)
            .into_iter()
            .map(|(f, d)| (f.name.as_str(), d))
            .collect();
        assert_eq!(
            drawn,
            [
                ("Lost", 0),
                ("Ping", 0),
                ("Pong", 0),
                ("Ball", 1),
                ("Work", 0),
                ("2025", 1),
                ("Alpha", 1)
            ]
        );
    }

    #[test]
    fn inbox_links_to_mail() {
        assert_eq!(list_href(INBOX), "/mail");
        assert_eq!(list_href("node-a.2a"), "/mail?folder=node-a.2a");
    }
}
