//! The commented `appliance.toml` written by `campusmail init` and on first run.
//!
//! Invariant: every key the schema in `mod.rs` knows appears here with its
//! default and a comment; the unit test in `mod.rs` parses this text.

/// The default configuration for a node, every key present and explained.
pub fn default_config_text(node_name: &str, hostname: &str) -> String {
    format!(
        r#"# campusmail appliance configuration.
# Relative paths are relative to the folder holding this file.
# Unknown keys are an error, so a typo is caught at start.

[node]
# This node's name (letters, digits, '-'); the origin of everything it logs.
name = "{node_name}"
# Host name announced in SMTP greetings and Received: headers.
hostname = "{hostname}"
# Folder with the spool, mail store, directory and TLS keys.
data_dir = "."

[engine]
# MX: mail from other servers (25 in production).
smtp_listen = "127.0.0.1:2525"
# Submission with STARTTLS for mail clients (587 in production).
submission_listen = "127.0.0.1:2587"
# Submission over implicit TLS (465 in production).
submissions_listen = "127.0.0.1:2465"
# Where the mailbox role's LMTP server listens (local delivery).
lmtp_target = "127.0.0.1:2424"
# Largest message accepted, in bytes.
max_message_bytes = 52428800
# Most recipients in one message.
max_recipients = 1000
# Longest text line inside a message, CRLF included (at least 1000).
max_line_bytes = 4096
# Protocol errors after which a session is closed.
max_errors = 10
# Seconds a client may stay silent before it is disconnected.
idle_timeout_secs = 300

[queue]
# Durations are written with a unit: "30s", "10m", "4h", "5d".
# Wait before the first retry of a failed delivery (doubles up to an hour).
retry_initial = "1m"
# How long a message may wait before it is returned to its sender.
lifetime = "5d"
# After this long undelivered, the sender is told once that it is delayed.
delay_notice_after = "4h"
# Mail with more recipients than this goes to the bulk lane, so it never
# delays everyday mail.
bulk_recipient_threshold = 100
# Senders whose mail always goes to the bulk lane (e.g. announcements).
bulk_senders = []
# Deliveries in flight at once, per lane.
normal_workers = 32
bulk_workers = 4
# Connections at once to one destination, per lane.
normal_per_destination = 8
bulk_per_destination = 2
# Time allowed to connect to a remote server, and for each of its replies.
connect_timeout = "30s"
command_timeout = "5m"

[routing]
# Send all remote mail through this server ("host:port") instead of looking
# up MX records; empty for direct delivery.
relay_host = ""
# DNS servers to ask ("ip:port"); empty uses the system's resolv.conf.
nameservers = []
# Port for direct delivery to MX hosts.
mx_port = 25

# Per-domain destinations that win over relay_host and MX records,
# e.g. users whose mailbox stays at another provider:
[routing.transports]
# "partner.ac.kr" = "mx.partner.ac.kr:25"

[mailbox]
# LMTP server for local delivery from the engine.
lmtp_listen = "127.0.0.1:2424"
# Webmail and admin console over HTTPS (443 in production).
https_listen = "127.0.0.1:8443"
# Plain HTTP: redirects every request to public_url (80 in production).
http_listen = "127.0.0.1:8080"
# The address users type in their browser.
public_url = "https://127.0.0.1:8443"
# Minutes of inactivity after which a webmail session ends.
session_idle_minutes = 60
# Messages per page in the message list.
page_size = 50
# Language when the browser does not ask for one: "ko" or "en".
default_language = "ko"
# Mailbox size and message count for users without limits of their own
# (`campusmail user quota`); 0 means no limit. Sizes: "500MB", "2GB", "1GiB".
default_quota = "0"
default_quota_messages = 0
# Mail that has been in Trash or Junk longer than this is deleted for good
# by a background job (checked every hour). "0d" keeps it forever.
purge_trash_after = "30d"
purge_junk_after = "30d"

[store]
# Where message bytes live: one entry per disk, each with a weight (its share
# of new mail, e.g. its size in TB). Empty: the data folder's store/ alone.
# After adding a directory run `campusmail store rebalance`; before removing
# one run `campusmail store drain DIR`.
# data_dirs = [
#   {{ path = "/srv/mail-disk1", weight = 1 }},
#   {{ path = "/srv/mail-disk2", weight = 1 }},
# ]
data_dirs = []
# Sealed segments with at least this much garbage (percent) are compacted in
# the background, checked this often.
compact_garbage_percent = 30
compact_every = "10m"

[auth]
# Check SPF, DKIM and DMARC on mail from other servers and record the
# results in an Authentication-Results: header.
verify_inbound = true
# Act on DMARC policies when DMARC fails: p=reject refuses the message,
# p=quarantine files it into the recipient's Junk folder.
enforce_dmarc = true
# Sender domains whose DMARC policy is only recorded, never enforced.
dmarc_monitor_only = []
# Upstream servers whose mail is taken as already checked (IP or CIDR), e.g.
# the campus spam appliance or Google's outbound servers.
trusted_relays = []
# DKIM-sign mail that users send from our domains (keys: `campusmail dkim`).
dkim_sign = true

[pair]
# The active-active pair; `campusmail pair init` and `pair join` fill these in.
# Where this node's replication link listens (mutual TLS), e.g. "10.0.0.1:2700".
listen = ""
# The peer node: its replication address, node name and certificate fingerprint.
peer = ""
peer_name = ""
peer_fingerprint = ""
# The engines hold each other's accepted mail (shadow copies) until it is
# delivered. Their link listens on the replication link's address with the
# next port unless set here ("ip:port"); engine_peer likewise ("host:port").
engine_listen = ""
engine_peer = ""
# A 250 waits this long for the peer to hold its copy, then the message is
# accepted alone (the log says so).
shadow_wait = "2s"
# If the peer's engine is silent this long, this node delivers the copies it
# holds for it; when the peer comes back it drops what was delivered here.
shadow_takeover_after = "10m"
# Raise an alert (log, console dashboard, /metrics campusmail_pair_alert)
# when the link has been down, or this node more than alert_behind_ops
# changes behind the peer, for this long.
alert_after = "2m"
alert_behind_ops = 10000

[metrics]
# Prometheus metrics at https://<this host>/metrics (names: admin guide).
enabled = true
# Who may read them: IP addresses or ranges. The default is this machine only;
# add your Prometheus server, e.g. ["127.0.0.1", "::1", "10.0.5.20"].
allow_from = ["127.0.0.1", "::1"]
# When set (at least 32 characters), a request must also send
# "Authorization: Bearer <token>". With allow_from = [] the token alone decides.
bearer_token = ""
# How often the console's dashboard charts take a sample (kept for a week).
sample_every = "1m"

[logs]
# Days the daily mail log (logs/mail-YYYY-MM-DD.log) and audit log
# (audit/audit-YYYY-MM-DD.log) files are kept; older files are deleted daily.
keep_days = 400

[tls]
# PEM certificate chain and private key; a self-signed pair is made on first
# run when they are missing. Replace them with the university's certificate.
cert = "tls/cert.pem"
key = "tls/key.pem"
"#
    )
}
