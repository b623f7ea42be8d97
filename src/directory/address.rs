//! Mail addresses and domain names as the directory stores them.
//!
//! Invariant: every address the directory stores or looks up has gone through
//! `normalize_address`, so lookups never differ by case of the domain or by
//! surrounding whitespace. Local parts are lower-cased too: a campus directory
//! has no two users whose names differ only by case.
//!
//! Reads untrusted input: yes (RCPT TO arguments, login names).

/// A domain name we accept: LDH labels, at least two of them, at most 253 octets.
pub fn is_valid_domain(domain: &str) -> bool {
    if domain.is_empty() || domain.len() > 253 || !domain.contains('.') {
        return false;
    }
    domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Lower-cases and checks an address `local@domain`; `None` when it is not one.
///
/// The local part may hold UTF-8 (RFC 6531 SMTPUTF8) but no spaces, controls,
/// angle brackets or a second `@`.
pub fn normalize_address(address: &str) -> Option<String> {
    let address = address.trim();
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || local.len() > 64 || address.len() > 254 {
        return None;
    }
    let local_ok = local
        .chars()
        .all(|c| !c.is_control() && !c.is_whitespace() && !"<>@,;:\\\"()[]".contains(c));
    if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    if !is_valid_domain(&domain) {
        return None;
    }
    Some(format!("{}@{}", local.to_lowercase(), domain))
}

/// The domain part of an already normalized address.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(
            normalize_address(" Alice@Campus.Test ").as_deref(),
            Some("alice@campus.test")
        );
        assert_eq!(
            normalize_address("김철수@campus.test").as_deref(),
            Some("김철수@campus.test")
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "@campus.test",
            "a@b",
            "a b@campus.test",
            "a@-x.test",
            "a..b@x.test",
            "<a>@x.test",
        ] {
            assert_eq!(normalize_address(bad), None, "{bad}");
        }
    }
}
