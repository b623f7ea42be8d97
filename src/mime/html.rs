//! Sanitizing HTML mail for display (ammonia, an allow-list sanitizer).
//!
//! What survives: ammonia's default formatting tags plus the table and
//! font attributes mail layouts use, and inline `style` limited to
//! properties that cannot load anything. What goes: scripts, event
//! handlers, forms, frames, `<style>`/`<link>`/`<meta>`/`<base>`, and any
//! URL scheme not allowed below. Links get `rel="noopener noreferrer"` and
//! `target="_blank"`. Images may come from `cid:` (parts of the message)
//! and `data:image/*` (not SVG); remote images (`http:`, `https:`, `//`,
//! `src` and `srcset`) only when the reader allowed them, and the caller
//! learns whether any were removed. Relative URLs are dropped: they would
//! point at the webmail's own origin.
//!
//! Untrusted input: the whole HTML body. The result is still shown in a
//! sandboxed frame under a strict CSP (web's job); this is one layer.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Inline style properties kept: none of them takes a URL.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "vertical-align",
    "width",
    "height",
    "max-width",
    "min-width",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
];

const IMAGE_DATA_TYPES: &[&str] = &[
    "data:image/png",
    "data:image/gif",
    "data:image/jpeg",
    "data:image/jpg",
    "data:image/webp",
];

fn is_remote(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("http:") || u.starts_with("https:") || u.starts_with("//")
}

fn is_inline_image(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("cid:") || IMAGE_DATA_TYPES.iter().any(|p| u.starts_with(p))
}

/// Sanitized HTML and whether remote images were removed.
pub fn sanitize(html: &str, allow_remote_images: bool) -> (String, bool) {
    let blocked = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&blocked);
    let mut b = ammonia::Builder::default();
    b.add_tags(["font", "center"])
        .add_generic_attributes(["style", "align", "valign", "bgcolor", "width", "height"])
        .add_tag_attributes("img", ["srcset", "border"])
        .add_tag_attributes("table", ["border", "cellpadding", "cellspacing"])
        .add_tag_attributes("td", ["colspan", "rowspan", "nowrap"])
        .add_tag_attributes("th", ["colspan", "rowspan", "nowrap"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_url_schemes(["cid", "data"])
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect::<HashSet<_>>())
        .attribute_filter(move |element, attribute, value| {
            filter_attribute(element, attribute, value, allow_remote_images, &flag)
        });
    let clean = b.clean(html).to_string();
    (clean, blocked.load(Ordering::Relaxed))
}

fn filter_attribute<'u>(
    element: &str,
    attribute: &str,
    value: &'u str,
    allow_remote: bool,
    blocked: &AtomicBool,
) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("img", "src") => {
            if is_inline_image(value) || (allow_remote && is_remote(value)) {
                Some(value.into())
            } else {
                if is_remote(value) {
                    blocked.store(true, Ordering::Relaxed);
                }
                None
            }
        }
        ("img", "srcset") => {
            let all_remote = value.split(',').all(|c| is_remote(c.trim()));
            if allow_remote && all_remote {
                Some(value.into())
            } else {
                if value.split(',').any(|c| is_remote(c.trim())) {
                    blocked.store(true, Ordering::Relaxed);
                }
                None
            }
        }
        // `data:` is allowed for images only.
        (_, "href") if value.trim_start().to_ascii_lowercase().starts_with("data:") => None,
        (_, "href") if value.trim_start().to_ascii_lowercase().starts_with("cid:") => None,
        // Belt and braces on top of the property allow-list: no URLs, CSS
        // escapes or legacy expressions in inline style.
        (_, "style") => {
            let v = value.to_ascii_lowercase();
            if v.contains("url")
                || v.contains('\\')
                || v.contains("expression")
                || v.contains("image")
            {
                None
            } else {
                Some(value.into())
            }
        }
        _ => Some(value.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn strips_active_content() {
        let dirty = r#"<p onclick="x()">hi<script>alert(1)</script></p><form action="http://e"><input name=a></form>
            <iframe src="http://e"></iframe><a href="javascript:alert(1)">j</a><a href="http://ok.example/">ok</a>
            <style>p{background:url(http://t)}</style><div style="color:red;background:url(http://t)">s</div>
            <span style="color: blue; position: fixed">c</span><a href="data:text/html,x">d</a>"#;
        let (clean, blocked) = sanitize(dirty, false);
        for bad in [
            "script",
            "onclick",
            "alert",
            "form",
            "input",
            "iframe",
            "javascript",
            "url(",
            "position",
            "data:",
        ] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(
            clean.contains(
                r#"<a href="http://ok.example/" target="_blank" rel="noopener noreferrer">ok</a>"#
            ),
            "{clean}"
        );
        assert!(
            clean.contains(r#"<span style="color:blue">c</span>"#),
            "{clean}"
        );
        assert!(!blocked);
    }

    #[test]
    fn remote_images_are_blocked_unless_allowed() {
        let html = r#"<img src="https://t.example/p.gif" alt="a"><img src="//t.example/q.gif">
            <img srcset="https://t.example/1x.png 1x, https://t.example/2x.png 2x"><img src="cid:logo@x">
            <img src="data:image/png;base64,iVBORw0KGgo="><img src="data:image/svg+xml,<svg/>"><img src="/local.png">"#;
        let (clean, blocked) = sanitize(html, false);
        assert!(blocked);
        assert!(!clean.contains("t.example"), "{clean}");
        assert!(
            !clean.contains("svg") && !clean.contains("local.png"),
            "{clean}"
        );
        assert!(
            clean.contains(r#"src="cid:logo@x""#) && clean.contains("data:image/png;base64"),
            "{clean}"
        );
        let (clean, blocked) = sanitize(html, true);
        assert!(!blocked);
        assert!(
            clean.contains(r#"src="https://t.example/p.gif""#) && clean.contains("2x.png 2x"),
            "{clean}"
        );
    }
}
