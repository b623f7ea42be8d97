//! Who a finished SASL exchange lets the session act as: the rule RFC 4616
//! §2 leaves to the server ("the server ... determines whether the
//! authentication identity is allowed to act as the authorization identity").
//!
//! Owns: that decision, as data (`Decision`); no I/O.
//!
//! Invariants:
//! - A user logs in as themselves only. An authorization identity other
//!   than their own login is refused, whatever the password.
//! - Only `auth::service::SERVICE_IDENTITY` with the service secret may
//!   name another identity, and only an existing, enabled user (never an
//!   alias, never nobody): the webmail acting for a logged-in user. The
//!   service identity without an authorization identity is refused: it has
//!   no mailbox and may not send as itself.
//! - What the session may do afterwards is the user's, not the service's:
//!   `may_send_as` and every other submission rule apply to the user.
//! - Every refusal gets the same SMTP reply (535 5.7.8); `Refusal` only
//!   tells the log why.
//!
//! Reads untrusted input: yes, the identities and password from the peer
//! (compared and looked up only).

use crate::auth::service::{ServiceSecret, SERVICE_IDENTITY};
use crate::directory::address::normalize_address;
use crate::directory::snapshot::{AuthOutcome, DirectorySnapshot};

/// What a SASL exchange carried (RFC 4616 §2 for PLAIN; LOGIN has no
/// authorization identity).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Credentials {
    /// The authorization identity, when one was given and is not empty.
    pub(super) authzid: Option<String>,
    /// The authentication identity.
    pub(super) login: String,
    pub(super) password: String,
}

/// The outcome of checking credentials; data, not an error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// The session acts as `user` (normalized); `via_service` when the
    /// webmail's service identity authenticated for them.
    Accepted {
        user: String,
        via_service: bool,
    },
    Refused(Refusal),
}

/// Why credentials were refused (for the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    BadCredentials,
    Disabled,
    /// A user asked to act as someone else.
    ProxyNotAllowed,
    /// The service identity with a wrong secret (or none configured).
    BadServiceSecret,
    /// The service identity without an authorization identity.
    ServiceWithoutUser,
    /// The service asked to act as an address that is no user here.
    UnknownUser,
    /// The service asked to act as a disabled user.
    DisabledUser,
}

impl Refusal {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refusal::BadCredentials => "bad credentials",
            Refusal::Disabled => "account disabled",
            Refusal::ProxyNotAllowed => "a user may not act as another identity",
            Refusal::BadServiceSecret => "wrong service secret",
            Refusal::ServiceWithoutUser => "service login without an authorization identity",
            Refusal::UnknownUser => "authorization identity is not a user",
            Refusal::DisabledUser => "authorization identity is disabled",
        }
    }
}

/// Decides who `credentials` let the session act as. Slow on purpose for
/// users (argon2): run it off the executor.
pub(super) fn authorize(
    snapshot: &DirectorySnapshot,
    service: Option<&ServiceSecret>,
    credentials: &Credentials,
) -> Decision {
    if credentials.login == SERVICE_IDENTITY {
        return authorize_service(snapshot, service, credentials);
    }
    if let Some(authzid) = &credentials.authzid {
        let same = normalize_address(authzid)
            .zip(normalize_address(&credentials.login))
            .is_some_and(|(a, b)| a == b);
        if !same {
            return Decision::Refused(Refusal::ProxyNotAllowed);
        }
    }
    match snapshot.authenticate(&credentials.login, &credentials.password) {
        AuthOutcome::Accepted(user) => Decision::Accepted {
            user,
            via_service: false,
        },
        AuthOutcome::BadCredentials => Decision::Refused(Refusal::BadCredentials),
        AuthOutcome::Disabled => Decision::Refused(Refusal::Disabled),
    }
}

fn authorize_service(
    snapshot: &DirectorySnapshot,
    service: Option<&ServiceSecret>,
    credentials: &Credentials,
) -> Decision {
    if !service.is_some_and(|s| s.matches(&credentials.password)) {
        return Decision::Refused(Refusal::BadServiceSecret);
    }
    let Some(authzid) = &credentials.authzid else {
        return Decision::Refused(Refusal::ServiceWithoutUser);
    };
    let Some(user) = normalize_address(authzid) else {
        return Decision::Refused(Refusal::UnknownUser);
    };
    match snapshot.users.get(&user) {
        None => Decision::Refused(Refusal::UnknownUser),
        Some(record) if !record.enabled => Decision::Refused(Refusal::DisabledUser),
        Some(_) => Decision::Accepted {
            user,
            via_service: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::password::hash_password;
    use crate::directory::snapshot::SnapshotUser;

    const SECRET: &str = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-x";

    fn directory() -> DirectorySnapshot {
        let mut s = DirectorySnapshot::default();
        s.domains.insert("campus.test".into());
        for (name, enabled) in [("alice", true), ("bob", true), ("old", false)] {
            s.users.insert(
                format!("{name}@campus.test"),
                SnapshotUser {
                    password_hash: hash_password(&format!("{name}-password")).unwrap(),
                    enabled,
                },
            );
        }
        s.aliases
            .insert("info@campus.test".into(), vec!["alice@campus.test".into()]);
        s
    }

    fn creds(authzid: Option<&str>, login: &str, password: &str) -> Credentials {
        Credentials {
            authzid: authzid.map(str::to_string),
            login: login.into(),
            password: password.into(),
        }
    }

    fn check(c: &Credentials) -> Decision {
        authorize(&directory(), Some(&ServiceSecret::for_tests(SECRET)), c)
    }

    #[test]
    fn the_service_acts_for_an_enabled_user() {
        assert_eq!(
            check(&creds(Some("Alice@Campus.Test"), SERVICE_IDENTITY, SECRET)),
            Decision::Accepted {
                user: "alice@campus.test".into(),
                via_service: true
            }
        );
    }

    #[test]
    fn a_wrong_or_missing_service_secret_is_refused() {
        for password in ["", "wrong", &SECRET[..SECRET.len() - 1], "alice-password"] {
            assert_eq!(
                check(&creds(
                    Some("alice@campus.test"),
                    SERVICE_IDENTITY,
                    password
                )),
                Decision::Refused(Refusal::BadServiceSecret),
                "{password:?}"
            );
        }
        // An engine without a secret accepts no service login at all.
        let c = creds(Some("alice@campus.test"), SERVICE_IDENTITY, SECRET);
        assert_eq!(
            authorize(&directory(), None, &c),
            Decision::Refused(Refusal::BadServiceSecret)
        );
    }

    #[test]
    fn the_service_may_act_only_for_existing_enabled_users() {
        let refused = |authzid: Option<&str>| check(&creds(authzid, SERVICE_IDENTITY, SECRET));
        assert_eq!(
            refused(Some("old@campus.test")),
            Decision::Refused(Refusal::DisabledUser)
        );
        assert_eq!(
            refused(Some("ghost@campus.test")),
            Decision::Refused(Refusal::UnknownUser)
        );
        // An alias is not a user (it has no mailbox of its own).
        assert_eq!(
            refused(Some("info@campus.test")),
            Decision::Refused(Refusal::UnknownUser)
        );
        assert_eq!(
            refused(Some("not an address")),
            Decision::Refused(Refusal::UnknownUser)
        );
        assert_eq!(
            refused(None),
            Decision::Refused(Refusal::ServiceWithoutUser)
        );
    }

    #[test]
    fn a_user_cannot_use_authzid_to_become_someone_else() {
        // Even with the right password.
        assert_eq!(
            check(&creds(
                Some("bob@campus.test"),
                "alice@campus.test",
                "alice-password"
            )),
            Decision::Refused(Refusal::ProxyNotAllowed)
        );
        // A user who somehow learned the service secret still cannot use it
        // under their own login.
        assert_eq!(
            check(&creds(Some("bob@campus.test"), "alice@campus.test", SECRET)),
            Decision::Refused(Refusal::ProxyNotAllowed)
        );
        // Naming yourself as authzid is the same as naming nobody.
        assert_eq!(
            check(&creds(
                Some("ALICE@campus.test"),
                "alice@campus.test",
                "alice-password"
            )),
            Decision::Accepted {
                user: "alice@campus.test".into(),
                via_service: false
            }
        );
    }

    #[test]
    fn ordinary_logins_are_unchanged() {
        assert_eq!(
            check(&creds(None, "alice@campus.test", "alice-password")),
            Decision::Accepted {
                user: "alice@campus.test".into(),
                via_service: false
            }
        );
        assert_eq!(
            check(&creds(None, "alice@campus.test", "nope")),
            Decision::Refused(Refusal::BadCredentials)
        );
        assert_eq!(
            check(&creds(None, "old@campus.test", "old-password")),
            Decision::Refused(Refusal::Disabled)
        );
    }
}
