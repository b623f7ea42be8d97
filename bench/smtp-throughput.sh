#!/usr/bin/env bash
# smtp-throughput.sh: accepted messages per second, campusmail against Postfix.
#
# Both servers run on this machine, on loopback, each from its own temp
# folder, and are driven by the *same* smtp-source command (Postfix's load
# generator). Each run times smtp-source from start to exit: the number of
# messages it sent, all answered 250, divided by that time. Runs alternate
# Postfix / campusmail; the median of BENCH_RUNS runs is reported, with the
# ratio campusmail/Postfix.
#
#   Postfix:    smtpd on 127.0.0.1:P  -> queue (fsync) -> smtp -> smtp-sink
#   campusmail: SMTP on 127.0.0.1:C   -> spool (fsync) -> LMTP -> its store
#
# Usage (one command, as root on Debian; installs postfix if missing):
#   bash bench/smtp-throughput.sh
# Knobs (environment): BENCH_MESSAGES (8000), BENCH_SESSIONS (20),
#   BENCH_SIZE (5000 bytes of body), BENCH_RUNS (3), BENCH_DRAIN_SECS (300),
#   BENCH_WARMUP (1: untimed runs of each server before the timed ones, so
#   both are measured as servers that have handled mail, not freshly
#   started: Postfix has spawned its daemons, campusmail has finished spool
#   files to reuse),
#   CAMPUSMAIL_SRC (source tree to build; default: this repository),
#   CAMPUSMAIL_BIN (use this binary instead of building),
#   BENCH_RESULTS (file the result line is appended to; default
#   bench/results.txt), BENCH_TMPDIR (where the temp folder goes; default
#   /tmp: it must be a real disk, not tmpfs, or fsync costs nothing),
#   BENCH_KEEP=1 (keep the temp folder for inspection).
#
# Besides the accepted rate it reports a "drained" rate: messages divided by
# the time until the server's queue was empty again (Postfix: relayed to
# smtp-sink; campusmail: delivered over LMTP into its store). Accepting
# faster than one delivers only builds a backlog, so read both.
#
# It never touches the system's Postfix: every Postfix file lives under the
# temp folder (config_directory, queue_directory, data_directory), and
# everything it starts is stopped on exit (trap), by process id.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SRC=${CAMPUSMAIL_SRC:-$REPO}
MESSAGES=${BENCH_MESSAGES:-8000}
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-5000}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
DRAIN_SECS=${BENCH_DRAIN_SECS:-300}
RESULTS=${BENCH_RESULTS:-$HERE/results.txt}
FROM=bench@example.org
TO=user@campus.test

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- 1. tools -----------------------------------------------------------------
need_postfix=0
for tool in smtp-source smtp-sink postfix postconf postqueue; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || need_postfix=1
done
if [ "$need_postfix" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "postfix is missing and only root can apt-get install it"
    log "installing postfix (no system configuration, nothing started)"
    # "No configuration": Debian sets up no system instance and starts nothing.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
command -v python3 >/dev/null || die "python3 is needed to pick free ports"
id postfix >/dev/null 2>&1 || die "the postfix user is missing (is the postfix package installed?)"

# --- temp folder and clean-up -------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/campusmail-bench.XXXXXX")
FS=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo unknown)
[ "$FS" = tmpfs ] && log "warning: $WORK is on tmpfs: fsync is free there, the numbers mean little"
chmod 755 "$WORK" # postfix's daemons (user postfix) must reach their queue
PF_CONF=$WORK/postfix/etc
PF_QUEUE=$WORK/postfix/queue
PF_DATA=$WORK/postfix/data
CM_DIR=$WORK/campusmail
SINK_PID=""
CM_PID=""
PF_STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [ "$PF_STARTED" = 1 ]; then
        postfix -c "$PF_CONF" stop >/dev/null 2>&1
        # postfix stop returns before master is gone; wait for its pid file.
        for _ in $(seq 50); do
            [ -s "$PF_QUEUE/pid/master.pid" ] || break
            kill -0 "$(tr -d ' ' <"$PF_QUEUE/pid/master.pid")" 2>/dev/null || break
            sleep 0.2
        done
    fi
    [ -n "$CM_PID" ] && kill "$CM_PID" 2>/dev/null && wait "$CM_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PF_PORT=$(free_port)
SINK_PORT=$(free_port)
while [ "$SINK_PORT" = "$PF_PORT" ]; do SINK_PORT=$(free_port); done

wait_port() { # host port seconds
    for _ in $(seq $(($3 * 10))); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# --- 2. campusmail --------------------------------------------------------------
if [ -n "${CAMPUSMAIL_BIN:-}" ]; then
    BIN=$CAMPUSMAIL_BIN
else
    log "building campusmail (release) in $SRC"
    (cd "$SRC" && cargo build --release --quiet --bin campusmail) || die "cargo build --release"
    BIN=${CARGO_TARGET_DIR:-$SRC/target}/release/campusmail
fi
[ -x "$BIN" ] || die "no campusmail binary at $BIN"

mkdir -p "$CM_DIR"
CM_CONF=$CM_DIR/appliance.toml
"$BIN" --config "$CM_CONF" init --hostname mx.campus.test >"$CM_DIR/init.log" 2>&1 \
    || die "campusmail init: $(cat "$CM_DIR/init.log")"
CM_SMTP=$(free_port)
# Every listener on a free loopback port (the same replacements as
# tests/common/mod.rs); everything else stays at its default, durability
# included: the spool is fsynced before each 250. Inbound SPF/DKIM/DMARC
# checks are off, as the Postfix here does none either (and without a
# reachable DNS server each check would wait for a resolver timeout, which
# measures the timeout, not the server).
sed -i \
    -e "s/^verify_inbound = true/verify_inbound = false/" \
    -e "s/127\.0\.0\.1:2525/127.0.0.1:$CM_SMTP/g" \
    -e "s/127\.0\.0\.1:2587/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:2465/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:2424/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:8443/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:8080/127.0.0.1:$(free_port)/g" \
    "$CM_CONF"
"$BIN" --config "$CM_CONF" domain add campus.test >>"$CM_DIR/init.log" 2>&1 || die "domain add"
echo "user-bench-password" | "$BIN" --config "$CM_CONF" user add "$TO" --password-stdin \
    >>"$CM_DIR/init.log" 2>&1 || die "user add"

CAMPUSMAIL_LOG=${CAMPUSMAIL_LOG:-warn} "$BIN" --config "$CM_CONF" run \
    >"$CM_DIR/stdout.log" 2>"$CM_DIR/stderr.log" &
CM_PID=$!
for _ in $(seq 600); do
    grep -qx ready "$CM_DIR/stdout.log" 2>/dev/null && break
    kill -0 "$CM_PID" 2>/dev/null || die "campusmail exited: $(tail -5 "$CM_DIR/stderr.log")"
    sleep 0.1
done
grep -qx ready "$CM_DIR/stdout.log" || die "campusmail did not become ready"
log "campusmail ready on 127.0.0.1:$CM_SMTP"

# --- 1b. Postfix in the temp folder, relaying to smtp-sink -----------------------
smtp-sink -u postfix "127.0.0.1:$SINK_PORT" 256 >"$WORK/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port 127.0.0.1 "$SINK_PORT" 10 || die "smtp-sink did not listen"

mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA"
chown postfix "$PF_DATA"
cp /etc/postfix/master.cf "$PF_CONF/master.cf" 2>/dev/null \
    || cp /usr/share/postfix/master.cf.dist "$PF_CONF/master.cf"
: >"$PF_CONF/main.cf"
postconf -c "$PF_CONF" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $PF_QUEUE" \
    "data_directory = $PF_DATA" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "myhostname = postfix.bench.test" \
    "mydomain = bench.test" \
    "myorigin = bench.test" \
    "mydestination =" \
    "mynetworks = 127.0.0.0/8" \
    "smtpd_relay_restrictions = permit_mynetworks, reject" \
    "relayhost = [127.0.0.1]:$SINK_PORT" \
    "local_transport = error:local delivery is off in this benchmark" \
    "alias_maps =" \
    "alias_database =" \
    "biff = no" \
    "append_dot_mydomain = no" \
    "smtp_tls_security_level = none" \
    "smtpd_tls_security_level = none" \
    "maillog_file_prefixes = $WORK" \
    "maillog_file = $WORK/postfix/maillog"
# smtpd on our loopback port instead of port 25; no chroot (the temp queue
# has no copies of /etc files); postlogd writes maillog_file.
sed -i -E "s/^smtp([[:space:]]+)inet/127.0.0.1:$PF_PORT\1inet/" "$PF_CONF/master.cf"
grep -q "^127.0.0.1:$PF_PORT" "$PF_CONF/master.cf" || die "no smtpd line in master.cf"
grep -q '^postlog' "$PF_CONF/master.cf" \
    || echo "postlog   unix-dgram n  -       n       -       1       postlogd" >>"$PF_CONF/master.cf"
postconf -c "$PF_CONF" -F '*/*/chroot = n'
postfix -c "$PF_CONF" check >"$WORK/postfix-check.log" 2>&1 || true
postfix -c "$PF_CONF" start >"$WORK/postfix-start.log" 2>&1 \
    || die "postfix start: $(cat "$WORK/postfix-start.log")"
PF_STARTED=1
wait_port 127.0.0.1 "$PF_PORT" 20 || die "postfix did not listen on $PF_PORT"
log "postfix ready on 127.0.0.1:$PF_PORT, relaying to smtp-sink on $SINK_PORT"

# --- 3. runs ----------------------------------------------------------------------
queued_postfix() {
    find "$PF_QUEUE/maildrop" "$PF_QUEUE/incoming" "$PF_QUEUE/active" \
        "$PF_QUEUE/deferred" "$PF_QUEUE/hold" -type f 2>/dev/null | wc -l
}
queued_campusmail() { # spool/free holds finished files kept for reuse
    find "$CM_DIR/spool/incoming" "$CM_DIR/spool/queue" -type f 2>/dev/null | wc -l
}
wait_drained() { # name
    for _ in $(seq $((DRAIN_SECS * 5))); do
        [ "$("queued_$1")" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# One timed smtp-source run. Prints "accepted_rate drained_rate" in
# messages/second ("failed" when smtp-source did not get 250 for every
# message; drained is "slow" when the queue was not empty within
# BENCH_DRAIN_SECS).
one_run() { # name port
    local start end rc drained_at secs rate drained
    wait_drained "$1" || log "warning: $1's queue still holds $("queued_$1") files before the run"
    start=$(date +%s.%N)
    set +e
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$FROM" -t "$TO" \
        "127.0.0.1:$2" >>"$WORK/smtp-source-$1.log" 2>&1
    rc=$?
    set -e
    end=$(date +%s.%N)
    if [ "$rc" != 0 ]; then
        log "$1: smtp-source failed (exit $rc): $(tail -3 "$WORK/smtp-source-$1.log" | tr '\n' ' ')"
        echo "failed failed"
        return
    fi
    secs=$(echo "$end - $start" | bc)
    rate=$(echo "scale=1; $MESSAGES / $secs" | bc)
    if wait_drained "$1"; then
        drained_at=$(date +%s.%N)
        drained=$(echo "scale=1; $MESSAGES / ($drained_at - $start)" | bc)
        log "$1: $MESSAGES accepted in ${secs}s = $rate msg/s; queue empty after" \
            "$(echo "$drained_at - $start" | bc)s = $drained msg/s"
    else
        drained=slow
        log "$1: $MESSAGES accepted in ${secs}s = $rate msg/s; queue not empty after ${DRAIN_SECS}s more"
    fi
    echo "$rate $drained"
}

median() { # values...: the middle one; "failed" or "slow" if any run was
    local v
    for v in "$@"; do case $v in failed | slow) echo "$v"; return ;; esac; done
    printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}
ratio() { # campusmail postfix
    case "$1$2" in *[!0-9.]*) echo n/a ;; *) echo "scale=2; $1 / $2" | bc ;; esac
}

command -v bc >/dev/null || die "bc is needed (apt-get install bc)"
log "smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE -f $FROM -t $TO 127.0.0.1:PORT, $RUNS runs each"
for _ in $(seq "$WARMUP"); do
    log "warm-up (not counted):"
    one_run postfix "$PF_PORT" >/dev/null
    one_run campusmail "$CM_SMTP" >/dev/null
done
pf_acc=() pf_drn=() cm_acc=() cm_drn=()
for _ in $(seq "$RUNS"); do
    read -r a d < <(one_run postfix "$PF_PORT")
    pf_acc+=("$a") pf_drn+=("$d")
    read -r a d < <(one_run campusmail "$CM_SMTP")
    cm_acc+=("$a") cm_drn+=("$d")
done
PF=$(median "${pf_acc[@]}")
CM=$(median "${cm_acc[@]}")
PF_D=$(median "${pf_drn[@]}")
CM_D=$(median "${cm_drn[@]}")
RATIO=$(ratio "$CM" "$PF")
RATIO_D=$(ratio "$CM_D" "$PF_D")
# Anything campusmail logged at warn or error level during the runs, and
# anything its spool set aside as damaged.
CM_WARNINGS=$(grep -c -i -E 'warn|error' "$CM_DIR/stderr.log" || true)
CM_CORRUPT=$(find "$CM_DIR/spool/corrupt" -type f 2>/dev/null | wc -l)

# --- 4. the result line -------------------------------------------------------------
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$SRC" status --porcelain -- . ':!bench/results.txt' 2>/dev/null | head -1)" ]; then
    COMMIT="$COMMIT+dirty"
fi
joined() { local IFS=,; echo "$*"; }
LINE="$(date -u +%Y-%m-%dT%H:%M:%SZ) smtp-throughput v1 commit=$COMMIT cpus=$(nproc) fs=$FS \
messages=$MESSAGES sessions=$SESSIONS size=$SIZE runs=$RUNS warmup=$WARMUP \
postfix_accepted_per_s=$PF campusmail_accepted_per_s=$CM ratio=$RATIO \
postfix_drained_per_s=$PF_D campusmail_drained_per_s=$CM_D drained_ratio=$RATIO_D \
postfix_runs=$(joined "${pf_acc[@]}") campusmail_runs=$(joined "${cm_acc[@]}") \
campusmail_warnings=$CM_WARNINGS campusmail_corrupt=$CM_CORRUPT"
echo "$LINE"
echo "$LINE" >>"$RESULTS"
