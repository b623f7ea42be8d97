//! Static assets (CSS, icons, the compose form's one script), embedded in the binary.
//!
//! Owns: the fixed table of files under `static/` that the web serves.
//!
//! Invariants:
//! - Only names in `ASSETS` are served; a request path is compared with
//!   them, never joined to a filesystem path, so there is no traversal.
//! - Pages link assets as `/static/NAME?v=VERSION`, where VERSION is a hash
//!   of the content, so assets can be cached for a year and still change.
//!
//! Reads untrusted input: the requested name (only compared).

use std::sync::OnceLock;

use super::http::Reply;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "webmail.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/webmail.css"),
    },
    Asset {
        name: "console-ops.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/console-ops.css"),
    },
    Asset {
        name: "suggest.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/suggest.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/favicon.svg"),
    },
];

/// The asset called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The URL pages use for an asset, with its content version.
pub fn url(name: &str) -> String {
    static VERSIONS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| (a.name, blake3::hash(a.bytes).to_hex()[..12].to_string()))
            .collect()
    });
    let version = versions
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("0");
    format!("/static/{name}?v={version}")
}

/// The reply for `GET /static/NAME`.
pub fn serve(asset: &Asset) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type", asset.content_type.to_string()),
            (
                "Cache-Control",
                "public, max-age=31536000, immutable".into(),
            ),
            ("Content-Security-Policy", "default-src 'none'".into()),
        ],
        body: asset.bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_assets_are_served_with_type_and_long_cache() {
        let css = find("webmail.css").expect("css embedded");
        let reply = serve(css).finish();
        assert_eq!(
            reply.header("Content-Type"),
            Some("text/css; charset=utf-8")
        );
        assert!(reply
            .header("Cache-Control")
            .unwrap()
            .contains("max-age=31536000"));
        assert!(!reply.body.is_empty());
        assert!(url("webmail.css").starts_with("/static/webmail.css?v="));
    }

    #[test]
    fn unknown_and_traversal_names_are_not_found() {
        assert!(find("../Cargo.toml").is_none());
        assert!(find("webmail.css/").is_none());
        assert!(find("").is_none());
    }
}
