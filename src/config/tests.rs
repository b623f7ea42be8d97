//! Tests of loading, defaults and validation of `appliance.toml`.
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_text(Path::new("/etc/campusmail/appliance.toml"), text)
}

#[test]
fn the_written_default_parses_and_validates() {
    let c = parse(&default_config_text("node-a", "mail.campus.test")).unwrap();
    assert_eq!(c.node.name, "node-a");
    assert_eq!(c.node.data_dir, PathBuf::from("/etc/campusmail"));
    assert_eq!(c.tls.cert, PathBuf::from("/etc/campusmail/tls/cert.pem"));
    assert_eq!(c.engine.smtp_listen.port(), 2525);
}

#[test]
fn data_directories_resolve_against_the_data_folder() {
    let c = parse(
        "[node]\nname=\"a\"\nhostname=\"m.x.test\"\n[store]\ndata_dirs = [ \
         { path = \"/srv/disk1\", weight = 2 }, { path = \"disk2\" } ]\n\
         [mailbox]\ndefault_quota = \"2GB\"\n",
    )
    .unwrap();
    let dirs = c.store_data_dirs();
    assert_eq!(dirs[0].path, PathBuf::from("/srv/disk1"));
    assert_eq!(dirs[0].weight, 2);
    assert_eq!(dirs[1].path, PathBuf::from("/etc/campusmail/disk2"));
    assert_eq!(dirs[1].weight, 1);
    assert_eq!(c.mailbox.default_quota, ConfigSize(2_000_000_000));
    let err = parse("[node]\nname=\"a\"\nhostname=\"m.x.test\"\n[store]\ndata_dirs = [ { path = \"d\", weight = 0 } ]\n")
        .unwrap_err();
    assert!(err.to_string().contains("store.data_dirs"), "{err}");
    let default = parse("[node]\nname=\"a\"\nhostname=\"m.x.test\"\n").unwrap();
    assert_eq!(
        default.store_data_dirs()[0].path,
        PathBuf::from("/etc/campusmail/store")
    );
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let err = parse("[node]\nname=\"a\"\nhostname=\"m.x.test\"\nfoo=1\n").unwrap_err();
    assert!(err.to_string().contains("foo"), "{err}");
}

#[test]
fn invalid_values_name_the_key() {
    let err = parse("[node]\nname=\"a\"\nhostname=\"m.x.test\"\n[engine]\nmax_line_bytes=10\n")
        .unwrap_err();
    assert!(err.to_string().contains("engine.max_line_bytes"), "{err}");
    let err = parse("[node]\nname=\"a b\"\nhostname=\"m.x.test\"\n").unwrap_err();
    assert!(err.to_string().contains("node.name"), "{err}");
}
