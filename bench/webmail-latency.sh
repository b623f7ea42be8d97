#!/usr/bin/env bash
# webmail-latency.sh: the webmail on a 100,000-message folder (issue #6):
# list and search latency on the server side (p50/p99), and pages per
# second with wrk for the logged-in inbox view and for searches; search
# compared with Dovecot's own `doveadm search` on the same messages.
#
#   fill:     MESSAGES made-up Korean messages (src/store/search/sample_mail.rs)
#             into one user's INBOX through the store API
#             (examples/webmail_bench.rs fill: Store::deliver from THREADS
#             threads, each delivery fsynced and indexed, the appliance stopped)
#   server:   webmail_bench measure: the store's list page and searches, timed
#             in-process (no HTTP, no TLS): the server-side latency
#   wrk:      the appliance running (`run --role mailbox`), a webmail session
#             from curl's login, then wrk over HTTPS with keep-alive:
#             GET /mail (inbox page 1) and GET /mail/search?q=... for
#             a rare and a common word; wrk --latency gives the client-side
#             p50/p99 of whole pages too
#   dovecot:  the same messages as a Maildir (webmail_bench maildir), Dovecot
#             from its own config in the temp folder (no FTS plugin: Debian's
#             dovecot-core has none enabled), `doveadm search ... text WORD`
#             timed after one warm-up run (which builds dovecot.index)
#
# Usage (as root on Debian 12 with a Rust toolchain):
#   bash bench/webmail-latency.sh
# It installs wrk if missing (`apt-get install -y wrk`); Dovecot (dovecot-core)
# is optional: without it the comparison is skipped and says so.
#
# Knobs (environment): MESSAGES (100000), THREADS (4), ROUNDS (200),
#   WRK_SECS (20), WRK_CONNS (8), CAMPUSMAIL_BIN and BENCH_EXAMPLE_BIN (skip
#   the build; both or neither), BENCH_TMPDIR (default /tmp; a real disk),
#   BENCH_KEEP=1, BENCH_RESULTS (default bench/results.txt), DOVECOT=0 (skip it).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
MESSAGES=${MESSAGES:-100000}
THREADS=${THREADS:-4}
ROUNDS=${ROUNDS:-200}
WRK_SECS=${WRK_SECS:-20}
WRK_CONNS=${WRK_CONNS:-8}
RESULTS=${BENCH_RESULTS:-$HERE/results.txt}
DOMAIN=campus.test
USER_ADDR=user@$DOMAIN
PASSWORD=bench-user-password
RARE=특별장학생선발
COMMON=공지

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
pct() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

# --- 1. tools ----------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get install -y wrk)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null || die "apt-get install -y wrk"
fi
command -v curl >/dev/null || die "curl is missing (apt-get install -y curl)"
command -v python3 >/dev/null || die "python3 is missing"
USE_DOVECOT=${DOVECOT:-1}
if [ "$USE_DOVECOT" = 1 ] && ! command -v doveadm >/dev/null; then
    log "doveadm not found (apt-get install -y dovecot-core): the Dovecot comparison is skipped"
    USE_DOVECOT=0
fi

# --- temp folder and clean-up --------------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/campusmail-webmail-bench.XXXXXX")
chmod 755 "$WORK"
FS=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo unknown)
[ "$FS" = tmpfs ] && log "warning: $WORK is on tmpfs: fsync is free there"
CM_PID=""
DV_RUNNING=0
cleanup() {
    local rc=$?
    set +e
    if [ -n "$CM_PID" ]; then kill "$CM_PID" 2>/dev/null; wait "$CM_PID" 2>/dev/null; fi
    if [ "$DV_RUNNING" = 1 ]; then doveadm -c "$WORK/dovecot/dovecot.conf" stop >/dev/null 2>&1; fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- 2. build (one release build: the binary and the helper share the crate) ----------
if [ -n "${CAMPUSMAIL_BIN:-}" ]; then
    BIN=$CAMPUSMAIL_BIN
    HELPER=${BENCH_EXAMPLE_BIN:?set BENCH_EXAMPLE_BIN with CAMPUSMAIL_BIN}
else
    log "building campusmail and examples/webmail_bench (release) in $REPO"
    (cd "$REPO" && cargo build --release --quiet --bin campusmail --example webmail_bench) \
        || die "cargo build --release"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/campusmail
    HELPER=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/webmail_bench
fi
[ -x "$BIN" ] && [ -x "$HELPER" ] || die "missing $BIN or $HELPER"

# --- 3. campusmail: set up and fill -----------------------------------------------------
CM=$WORK/campusmail
mkdir -p "$CM"
CONF=$CM/appliance.toml
"$BIN" --config "$CONF" init --hostname mx.$DOMAIN >"$CM/init.log" 2>&1 || die "init: $(cat "$CM/init.log")"
HTTPS=$(free_port)
sed -i \
    -e "s/127\.0\.0\.1:2525/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:2587/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:2465/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:2424/127.0.0.1:$(free_port)/g" \
    -e "s/127\.0\.0\.1:8443/127.0.0.1:$HTTPS/g" \
    -e "s/127\.0\.0\.1:8080/127.0.0.1:$(free_port)/g" \
    "$CONF"
"$BIN" --config "$CONF" domain add "$DOMAIN" >>"$CM/init.log" 2>&1 || die "domain add"
printf '%s' "$PASSWORD" | "$BIN" --config "$CONF" user add "$USER_ADDR" --password-stdin \
    >>"$CM/init.log" 2>&1 || die "user add: $(tail -3 "$CM/init.log")"
log "filling $USER_ADDR's INBOX with $MESSAGES messages ($THREADS threads)"
FILL=$("$HELPER" fill "$CONF" "$USER_ADDR" "$MESSAGES" "$THREADS" 2>"$CM/fill.log") \
    || die "fill: $(tail -3 "$CM/fill.log")"
log "$FILL"
META_KIB=$(du -sk "$CM/store/meta" 2>/dev/null | cut -f1 || echo 0)
log "store metadata on disk: $META_KIB KiB ($((META_KIB * 1024 / MESSAGES)) bytes per message, everything included)"

# --- 4. server-side latency ----------------------------------------------------------------
log "server-side latency (store calls in-process, $ROUNDS rounds)"
"$HELPER" measure "$CONF" "$USER_ADDR" "$ROUNDS" | tee "$CM/measure.txt" >&2

# --- 5. wrk against the running appliance --------------------------------------------------
CAMPUSMAIL_LOG=warn "$BIN" --config "$CONF" run --role mailbox >"$CM/stdout.log" 2>"$CM/stderr.log" &
CM_PID=$!
for _ in $(seq 600); do
    grep -qx ready "$CM/stdout.log" 2>/dev/null && break
    kill -0 "$CM_PID" 2>/dev/null || die "campusmail exited: $(tail -5 "$CM/stderr.log")"
    sleep 0.1
done
grep -qx ready "$CM/stdout.log" || die "campusmail did not become ready"
BASE=https://127.0.0.1:$HTTPS
JAR=$CM/cookies.txt
TOKEN=$(curl -sk -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
[ -n "$TOKEN" ] || die "no csrf token on the login page"
STATUS=$(curl -sk -b "$JAR" -c "$JAR" -o /dev/null -w '%{http_code}' \
    --data-urlencode "address=$USER_ADDR" --data-urlencode "password=$PASSWORD" \
    --data-urlencode "csrf_token=$TOKEN" "$BASE/login")
[ "$STATUS" = 303 ] || die "webmail login: HTTP $STATUS"
SESSION=$(awk '$6 == "cm_session" { print $7 }' "$JAR")
[ -n "$SESSION" ] || die "no session cookie after login"
check_page() { # path text
    local page
    page=$(curl -sk -H "Cookie: cm_session=$SESSION" "$BASE$1")
    grep -qF "$2" <<<"$page" || die "$1 does not show $2"
}
check_page /mail 'class="messages"'
check_page "/mail/search?q=$(pct "$RARE")" '/mail/message/'

WRK_LINES=()
run_wrk() { # name path
    log "wrk: $1 ($2), $WRK_CONNS connections, ${WRK_SECS}s"
    local out
    out=$(wrk -t2 -c"$WRK_CONNS" -d"${WRK_SECS}s" --latency -H "Cookie: cm_session=$SESSION" "$BASE$2")
    echo "$out" >"$CM/wrk-$1.txt"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    [ -z "$non2xx" ] || die "wrk $1: $non2xx answers were not 2xx (session lost?)"
    log "  $rps pages/s, page latency p50 $p50, p99 $p99"
    WRK_LINES+=("$1: $rps pages/s (p50 $p50, p99 $p99)")
}
run_wrk inbox /mail
run_wrk search-rare "/mail/search?q=$(pct "$RARE")"
run_wrk search-common "/mail/search?q=$(pct "$COMMON")"
kill "$CM_PID" 2>/dev/null || true
wait "$CM_PID" 2>/dev/null || true
CM_PID=""

# --- 6. Dovecot: doveadm search on the same messages -----------------------------------------
DV_LINES=()
if [ "$USE_DOVECOT" = 1 ]; then
    DV=$WORK/dovecot
    mkdir -p "$DV/run" "$DV/state" "$DV/home/$USER_ADDR"
    "$HELPER" maildir "$DV/home/$USER_ADDR/Maildir" "$USER_ADDR" "$MESSAGES" >&2
    chown -R nobody:nogroup "$DV/home"
    cat >"$DV/dovecot.conf" <<EOF
# Written by bench/webmail-latency.sh; used only through doveadm -c.
base_dir = $DV/run
state_dir = $DV/state
instance_name = campusmail-webmail-bench-$$
protocols =
log_path = $DV/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
ssl = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DV/home/%u
}
EOF
    dovecot -c "$DV/dovecot.conf" >"$DV/start.log" 2>&1 || die "dovecot: $(cat "$DV/start.log")"
    DV_RUNNING=1
    for _ in $(seq 50); do [ -S "$DV/run/auth-userdb" ] && break; sleep 0.1; done
    dv_search() { # word -> seconds and count
        local t0 t1 n
        t0=$(date +%s.%N)
        n=$(doveadm -c "$DV/dovecot.conf" search -u "$USER_ADDR" mailbox INBOX text "$1" | wc -l) \
            || die "doveadm search: $(tail -3 "$DV/dovecot.log")"
        t1=$(date +%s.%N)
        python3 -c "print(f'{($t1 - $t0) * 1000:.0f} ms, {$n} matches')"
    }
    log "dovecot: warm-up search (builds dovecot.index)"
    log "  first run: $(dv_search "$RARE")"
    for word in "$RARE" "$COMMON"; do
        for run in 1 2 3; do
            r=$(dv_search "$word")
            case $r in *" 0 matches") die "doveadm found nothing for $word: $(tail -3 "$DV/dovecot.log")" ;; esac
            log "  doveadm search text $word, run $run: $r"
            DV_LINES+=("doveadm $word run $run: $r")
        done
    done
    doveadm -c "$DV/dovecot.conf" stop >/dev/null 2>&1 || true
    DV_RUNNING=0
fi

# --- 7. results ----------------------------------------------------------------------------------
{
    echo "webmail-latency $(date -u +%Y-%m-%dT%H:%MZ) messages=$MESSAGES: $FILL; meta ${META_KIB} KiB"
    sed 's/^/  server /' "$CM/measure.txt"
    for l in "${WRK_LINES[@]}"; do echo "  wrk $l"; done
    for l in "${DV_LINES[@]}"; do echo "  $l"; done
} | tee -a "$RESULTS"
