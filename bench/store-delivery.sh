#!/usr/bin/env bash
# store-delivery.sh: local delivery over LMTP into the mail store, campusmail's
# mailbox role against Dovecot's LMTP delivering into Maildir (issue #3).
#
# Both servers run on this machine, on loopback, each from the script's own
# temp folder, and get the same messages from the same client:
#
#   single:  smtp-source -L, MESSAGES messages of SIZE bytes, 1 recipient each
#   multi:   smtp-source -L, MESSAGES messages of SIZE bytes, RCPTS recipients each
#   reads:   READS random messages of the "single" mailbox read back
#            (campusmail: HTTPS GET /mail/message/{id}/raw with a webmail
#            session, keep-alive; Dovecot: open+read of a random Maildir file)
#   big:     one message of BIG_SIZE bytes to BIG_RCPTS different local users
#            (our own small LMTP client, BIG_CHUNK recipients per transaction,
#            the way campusmail's engine hands bulk mail over), then the bytes
#            on disk of each store: the single-instance case.
#
# Every case starts both servers on empty stores. A run counts only if every
# recipient got 250 (smtp-source stops at the first other reply).
#
# Dovecot is configured entirely here: its own dovecot.conf, base_dir and
# state_dir in the temp folder, a static userdb (every address is a user,
# home under the temp folder, mail files owned by `nobody` because Dovecot
# refuses mail access as root), LMTP on a loopback port, no authentication,
# Maildir. Nothing system-wide is read or changed (dovecot -c).
#
# campusmail runs only its mailbox role (`run --role mailbox`) with a data
# folder from `campusmail init`; users come from `campusmail user import`.
#
# Usage (as root on Debian 12 with a Rust toolchain):
#   bash bench/store-delivery.sh
# It needs Debian's dovecot-core, dovecot-lmtpd (the Dovecot side), postfix
# (smtp-source), python3, bc; it says how to install what is missing.
#
# Knobs (environment): MESSAGES (20000), SIZE (4000 bytes of body), RCPTS (5),
#   SESSIONS (8 parallel LMTP sessions), READS (2000), BIG_RCPTS (30000),
#   BIG_SIZE (20000), BIG_CHUNK (1000), DIRS (1; 4 = campusmail with four
#   data directories, `[store] data_dirs`, once the multi-disk store is in),
#   CASES ("single reads multi big"; reads right after single), CAMPUSMAIL_BIN (skip the build),
#   BENCH_TMPDIR (default /tmp; a real disk, not tmpfs), BENCH_KEEP=1,
#   BENCH_RESULTS (default bench/results.txt).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4000}
RCPTS=${RCPTS:-5}
SESSIONS=${SESSIONS:-8}
READS=${READS:-2000}
BIG_RCPTS=${BIG_RCPTS:-30000}
BIG_SIZE=${BIG_SIZE:-20000}
BIG_CHUNK=${BIG_CHUNK:-1000}
DIRS=${DIRS:-1}
CASES=${CASES:-single reads multi big}
RESULTS=${BENCH_RESULTS:-$HERE/results.txt}
FROM=bench@example.org
DOMAIN=campus.test

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- 1. tools -------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-core dovecot-lmtpd)
command -v smtp-source >/dev/null || missing+=(postfix)
command -v python3 >/dev/null || missing+=(python3)
command -v bc >/dev/null || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
    die "missing Debian packages: ${missing[*]}; install them with
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}
(the packages start no service of their own that this script needs; it runs Dovecot from its own configuration)"
fi
[ "$(id -u)" = 0 ] || die "run as root: Dovecot's mail files are written as the user nobody"
id nobody >/dev/null 2>&1 || die "the user nobody is missing"
case $DIRS in 1 | 4) ;; *) die "DIRS must be 1 or 4" ;; esac

# --- temp folder and clean-up ------------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/campusmail-store-bench.XXXXXX")
chmod 755 "$WORK"
FS=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo unknown)
[ "$FS" = tmpfs ] && log "warning: $WORK is on tmpfs: fsync is free there, the numbers mean little"
CM_PID=""
DV_CONF=""

stop_campusmail() {
    if [ -n "$CM_PID" ]; then
        kill "$CM_PID" 2>/dev/null || true
        wait "$CM_PID" 2>/dev/null || true
        CM_PID=""
    fi
}
dovecot_pid() { cat "$(dirname "$DV_CONF")/run/master.pid"; }
stop_dovecot() {
    if [ -n "$DV_CONF" ]; then
        local pidfile pid
        pidfile=$(dirname "$DV_CONF")/run/master.pid
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        DV_CONF=""
    fi
}
cleanup() {
    local rc=$?
    set +e
    stop_campusmail
    stop_dovecot
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port seconds
    for _ in $(seq $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
kib() { du -sk "$1" | cut -f1; }
# CPU seconds (user + system) a process and its children have used so far:
# its own, its reaped children's (cutime, cstime) and its live children's.
cpu_secs() { # pid
    python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
root = sys.argv[1]
total = 0
try:
    total += sum(int(x) for x in fields(root)[11:15])  # utime stime cutime cstime
except OSError:
    pass
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != root:
        try:
            st = fields(pid)
        except OSError:
            continue
        if st[1] == root:  # its parent is root
            total += int(st[11]) + int(st[12])
print(f"{total / tick:.2f}")
PY
}

# --- 2. campusmail ---------------------------------------------------------------------
if [ -n "${CAMPUSMAIL_BIN:-}" ]; then
    BIN=$CAMPUSMAIL_BIN
else
    log "building campusmail (release) in $REPO"
    (cd "$REPO" && cargo build --release --quiet --bin campusmail) || die "cargo build --release"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/campusmail
fi
[ -x "$BIN" ] || die "no campusmail binary at $BIN"

# The users every case needs, as one import file: user (with a password, for
# the webmail reads), 2user..RCPTSuser (smtp-source -r names its recipients
# so), and s000001..s<BIG_RCPTS> for the big message.
USERS_CSV=$WORK/users.csv
python3 - "$USERS_CSV" "$RCPTS" "$BIG_RCPTS" "$DOMAIN" <<'EOF'
import sys
path, rcpts, big, domain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(path, "w") as f:
    f.write("address,class,password\n")
    f.write(f"user@{domain},staff,bench-user-password\n")
    for i in range(2, rcpts + 1):
        f.write(f"{i}user@{domain},staff,\n")
    for i in range(1, big + 1):
        f.write(f"s{i:06d}@{domain},student,\n")
EOF

CM_LMTP="" CM_HTTPS="" CM_DIR=""
start_campusmail() { # case
    CM_DIR=$WORK/$1/campusmail
    mkdir -p "$CM_DIR"
    local conf=$CM_DIR/appliance.toml
    "$BIN" --config "$conf" init --hostname mx.campus.test >"$CM_DIR/init.log" 2>&1 \
        || die "campusmail init: $(cat "$CM_DIR/init.log")"
    CM_LMTP=$(free_port)
    CM_HTTPS=$(free_port)
    sed -i \
        -e "s/127\.0\.0\.1:2525/127.0.0.1:$(free_port)/g" \
        -e "s/127\.0\.0\.1:2587/127.0.0.1:$(free_port)/g" \
        -e "s/127\.0\.0\.1:2465/127.0.0.1:$(free_port)/g" \
        -e "s/127\.0\.0\.1:2424/127.0.0.1:$CM_LMTP/g" \
        -e "s/127\.0\.0\.1:8443/127.0.0.1:$CM_HTTPS/g" \
        -e "s/127\.0\.0\.1:8080/127.0.0.1:$(free_port)/g" \
        "$conf"
    if [ "$DIRS" = 4 ]; then
        mkdir -p "$CM_DIR"/disk{1,2,3,4}
        # The default file has `data_dirs = []` in its [store] section.
        local dirs="data_dirs = [ { path = \"$CM_DIR/disk1\", weight = 1 }, { path = \"$CM_DIR/disk2\", weight = 1 }, { path = \"$CM_DIR/disk3\", weight = 1 }, { path = \"$CM_DIR/disk4\", weight = 1 } ]"
        grep -qx 'data_dirs = \[\]' "$conf" || die "no 'data_dirs = []' line in $conf"
        sed -i "s|^data_dirs = \[\]\$|$dirs|" "$conf"
    fi
    "$BIN" --config "$conf" domain add "$DOMAIN" >>"$CM_DIR/init.log" 2>&1 \
        || die "campusmail domain add: $(tail -3 "$CM_DIR/init.log")"
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" --config "$conf" user import "$USERS_CSV" >>"$CM_DIR/init.log" 2>&1 \
        || die "campusmail user import: $(tail -5 "$CM_DIR/init.log")"
    t1=$(date +%s.%N)
    IMPORT_SECS=$(echo "$t1 - $t0" | bc)
    # info: the log names every stored message id (the reads need them);
    # Dovecot logs each delivery at info level too.
    CAMPUSMAIL_LOG=info "$BIN" --config "$conf" run --role mailbox \
        >"$CM_DIR/stdout.log" 2>"$CM_DIR/stderr.log" &
    CM_PID=$!
    for _ in $(seq 600); do
        grep -qx ready "$CM_DIR/stdout.log" 2>/dev/null && break
        kill -0 "$CM_PID" 2>/dev/null || die "campusmail exited: $(tail -5 "$CM_DIR/stderr.log")"
        sleep 0.1
    done
    grep -qx ready "$CM_DIR/stdout.log" || die "campusmail did not become ready"
}

campusmail_dir_figures() { # prints "bytes/writes/reads,..." per data directory
    "$BIN" --config "$CM_DIR/appliance.toml" store stats --json 2>/dev/null | python3 -c '
import json, sys
try:
    disks = json.load(sys.stdin)["disks"]
except Exception:
    print("n/a"); sys.exit()
print(",".join("%s/%s/%s" % (d["bytes"], d["writes"], d["reads"]) for d in disks))
'
}

# What campusmail stores mail in: the store folder (segments + sled
# metadata), plus the extra data directories when there are several.
campusmail_store_kib() {
    local total
    total=$(kib "$CM_DIR/store")
    if [ "$DIRS" = 4 ]; then
        for d in "$CM_DIR"/disk{1,2,3,4}; do total=$((total + $(kib "$d"))); done
    fi
    echo "$total"
}

# --- 3. Dovecot -------------------------------------------------------------------------
DV_LMTP="" DV_HOME=""
start_dovecot() { # case
    local dir=$WORK/$1/dovecot
    mkdir -p "$dir/run" "$dir/state" "$dir/home"
    chown nobody:nogroup "$dir/home"
    DV_HOME=$dir/home
    DV_LMTP=$(free_port)
    DV_CONF=$dir/dovecot.conf
    cat >"$DV_CONF" <<EOF
# Written by bench/store-delivery.sh; used only through dovecot -c.
base_dir = $dir/run
state_dir = $dir/state
instance_name = campusmail-bench-$$
protocols = lmtp
listen = 127.0.0.1
ssl = no
log_path = $dir/dovecot.log
mail_location = maildir:~/Maildir
# Mail files belong to nobody (Dovecot refuses uid 0 for mail access).
first_valid_uid = 1
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/home/%u
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DV_LMTP
  }
}
EOF
    dovecot -c "$DV_CONF" >"$dir/start.log" 2>&1 || die "dovecot: $(cat "$dir/start.log")"
    wait_port "$DV_LMTP" 20 || die "dovecot did not listen: $(tail -5 "$dir/dovecot.log")"
}

# --- 4. the cases ----------------------------------------------------------------------
# One timed smtp-source run; prints messages/second, or dies.
timed_source() { # name port rcpts logfile
    local start end
    start=$(date +%s.%N)
    smtp-source -L -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -r "$3" -f "$FROM" \
        -t "user@$DOMAIN" "127.0.0.1:$2" >"$4" 2>&1 \
        || die "$1: smtp-source failed: $(tail -3 "$4" | tr '\n' ' ')"
    end=$(date +%s.%N)
    echo "scale=1; $MESSAGES / ($end - $start)" | bc
}

declare -A R # results: R[case_server_what]
run_source_case() { # case rcpts
    local cpu0
    stop_campusmail
    start_dovecot "$1"
    cpu0=$(cpu_secs "$(dovecot_pid)")
    R[$1_dovecot_rate]=$(timed_source dovecot "$DV_LMTP" "$2" "$WORK/$1/dovecot/source.log")
    R[$1_dovecot_cpu]=$(echo "$(cpu_secs "$(dovecot_pid)") - $cpu0" | bc)
    stop_dovecot
    R[$1_dovecot_kib]=$(kib "$DV_HOME")
    log "$1: dovecot ${R[$1_dovecot_rate]} msg/s, ${R[$1_dovecot_cpu]} CPU s, ${R[$1_dovecot_kib]} KiB"
    start_campusmail "$1"
    cpu0=$(cpu_secs "$CM_PID")
    R[$1_campusmail_rate]=$(timed_source campusmail "$CM_LMTP" "$2" "$CM_DIR/source.log")
    R[$1_campusmail_cpu]=$(echo "$(cpu_secs "$CM_PID") - $cpu0" | bc)
    # Measured while it still runs (the reads need the "single" store up);
    # every delivery was flushed before its 250.
    R[$1_campusmail_kib]=$(campusmail_store_kib)
    # Per data directory: bytes stored and writes, from the running
    # appliance (reads: after the reads case).
    R[$1_campusmail_dirs]=$(campusmail_dir_figures)
    log "$1: per data directory (bytes/writes/reads): ${R[$1_campusmail_dirs]}"
    log "$1: campusmail ${R[$1_campusmail_rate]} msg/s, ${R[$1_campusmail_cpu]} CPU s, ${R[$1_campusmail_kib]} KiB"
}

run_reads() { # needs the "single" case's stores; campusmail still running
    local cm_dir=$WORK/single/campusmail dv_home=$WORK/single/dovecot/home
    R[reads_campusmail]=$(python3 - "$CM_HTTPS" "$cm_dir/stderr.log" "$READS" "user@$DOMAIN" <<'EOF'
import http.client, random, re, ssl, sys, time, urllib.parse
port, logfile, n, user = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids = []
# local_delivery logs `delivered ... mailbox=M folder=F <id> size=N` (the
# id is tracing's `message` field, printed bare).
pat = re.compile(r"mailbox=(\S+) folder=\S+ (?:message=)?(\S+) size=")
for line in open(logfile, errors="replace"):
    if " delivered" in line:
        m = pat.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m and m.group(1) == user:
            ids.append(m.group(2))
if not ids:
    sys.exit("no delivered message ids in the campusmail log")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
def request(method, path, body=None, cookies=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    jar = {}
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            jar[name] = rest.split(";", 1)[0]
    return r.status, data, jar
status, page, jar = request("GET", "/login")
token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
form = urllib.parse.urlencode({"address": user, "password": "bench-user-password", "csrf_token": token})
status, _, got = request("POST", "/login", form, jar)
if status != 303:
    sys.exit(f"webmail login failed: {status}")
jar.update(got)
random.seed(1)
picks = [random.choice(ids) for _ in range(n)]
start = time.time()
total = 0
for i in picks:
    status, data, _ = request("GET", f"/mail/message/{i}/raw", cookies=jar)
    if status != 200:
        sys.exit(f"GET raw {i}: {status}")
    total += len(data)
secs = time.time() - start
print(f"{n / secs:.1f}")
EOF
) || die "campusmail reads"
    R[reads_dovecot]=$(python3 - "$dv_home/user@$DOMAIN/Maildir" "$READS" <<'EOF'
import os, random, sys, time
maildir, n = sys.argv[1], int(sys.argv[2])
files = [os.path.join(maildir, d, f) for d in ("new", "cur") for f in os.listdir(os.path.join(maildir, d))]
random.seed(1)
picks = [random.choice(files) for _ in range(n)]
start = time.time()
for p in picks:
    with open(p, "rb") as f:
        f.read()
print(f"{n / (time.time() - start):.1f}")
EOF
) || die "dovecot reads"
    R[reads_campusmail_dirs]=$(campusmail_dir_figures)
    log "reads: per data directory (bytes/writes/reads): ${R[reads_campusmail_dirs]}"
    log "reads: campusmail ${R[reads_campusmail]}/s (HTTPS raw), Maildir files ${R[reads_dovecot]}/s"
}

run_big() {
    local body=$WORK/big-message.eml
    python3 - "$body" "$BIG_SIZE" <<'EOF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
head = ("From: Registrar <registrar@campus.test>\r\nTo: all-students@campus.test\r\n"
        "Subject: Registration for the spring term\r\nMessage-ID: <bench-announcement@campus.test>\r\n"
        "Date: Tue, 24 Nov 2026 09:00:00 +0900\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n")
line = "Registration for the spring term opens on Monday at 09:00 in the portal.\r\n"
body = line * (size // len(line) + 1)
open(path, "wb").write((head + body[: max(0, size - len(head))]).encode())
EOF
    deliver_big() { # port
        python3 - "$1" "$body" "$BIG_RCPTS" "$BIG_CHUNK" "$DOMAIN" <<'EOF'
import socket, sys, time
port, path, n, chunk, domain = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
msg = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line:
            sys.exit("connection closed")
        if line[3:4] != b"-":
            return line
def expect(line, code):
    if not line.startswith(code):
        sys.exit(f"unexpected reply {line!r}")
expect(reply(), b"220")
s.sendall(b"LHLO bench.test\r\n"); expect(reply(), b"250")
start = time.time()
rcpts = [f"s{i:06d}@{domain}" for i in range(1, n + 1)]
for k in range(0, n, chunk):
    part = rcpts[k:k + chunk]
    # Pipelined envelope (RFC 2920), as the engine sends it.
    s.sendall(b"MAIL FROM:<registrar@campus.test>\r\n" + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in part))
    expect(reply(), b"250")
    for _ in part:
        expect(reply(), b"250")
    s.sendall(b"DATA\r\n"); expect(reply(), b"354")
    data = msg.replace(b"\r\n.", b"\r\n..")
    s.sendall(data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    for _ in part:
        expect(reply(), b"250")
s.sendall(b"QUIT\r\n")
print(f"{n / (time.time() - start):.1f}")
EOF
    }
    stop_campusmail
    start_dovecot big
    R[big_dovecot_rate]=$(deliver_big "$DV_LMTP") || die "dovecot big delivery"
    stop_dovecot
    R[big_dovecot_kib]=$(kib "$DV_HOME")
    R[big_dovecot_files]=$(find "$DV_HOME" -path '*/new/*' -type f | wc -l)
    R[big_dovecot_inodes]=$(find "$DV_HOME" -path '*/new/*' -type f -printf '%i\n' | sort -u | wc -l)
    log "big: dovecot ${R[big_dovecot_rate]} rcpt/s, ${R[big_dovecot_kib]} KiB, ${R[big_dovecot_files]} files, ${R[big_dovecot_inodes]} distinct inodes"
    start_campusmail big
    # The store already holds the 30,000 users' directory records (they
    # travel in its op log to the peer); what the message costs is the
    # growth from here. Wait until the start-up logging has settled.
    local before=-1 now
    for _ in $(seq 60); do
        now=$(campusmail_store_kib)
        [ "$now" = "$before" ] && break
        before=$now
        sleep 2
    done
    R[big_campusmail_before_kib]=$before
    R[big_campusmail_rate]=$(deliver_big "$CM_LMTP") || die "campusmail big delivery"
    R[big_campusmail_total_kib]=$(campusmail_store_kib)
    R[big_campusmail_kib]=$(( R[big_campusmail_total_kib] - before ))
    stop_campusmail
    R[big_campusmail_blob_kib]=$(du -sk "$CM_DIR/store/blobs" | cut -f1)
    # What BIG_RCPTS separate copies of the message would take (apparent bytes).
    R[big_copies_kib]=$(( $(stat -c %s "$body") * BIG_RCPTS / 1024 ))
    log "big: campusmail ${R[big_campusmail_rate]} rcpt/s, ${R[big_campusmail_kib]} KiB for the message (blobs ${R[big_campusmail_blob_kib]} KiB; store ${R[big_campusmail_before_kib]} KiB before, ${R[big_campusmail_total_kib]} KiB after)"
}

ratio() { case "$1$2" in *[!0-9.]*) echo n/a ;; *) echo "scale=2; $1 / $2" | bc ;; esac; }

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
log "load average $LOAD_BEFORE (other work on this machine slows both servers and adds noise)"
log "MESSAGES=$MESSAGES SIZE=$SIZE RCPTS=$RCPTS SESSIONS=$SESSIONS READS=$READS BIG_RCPTS=$BIG_RCPTS BIG_SIZE=$BIG_SIZE BIG_CHUNK=$BIG_CHUNK DIRS=$DIRS fs=$FS"
for c in $CASES; do
    case $c in
        single) run_source_case single 1 ;;
        multi) run_source_case multi "$RCPTS" ;;
        reads)
            [ -n "$CM_PID" ] && [ "$CM_DIR" = "$WORK/single/campusmail" ] \
                || die "the reads case must come right after the single case (CASES=\"single reads ...\")"
            run_reads
            ;;
        big) run_big ;;
        *) die "unknown case $c" ;;
    esac
done
stop_campusmail

# --- 5. the result line -------------------------------------------------------------------
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$REPO" status --porcelain -- . ':!bench/results.txt' 2>/dev/null | head -1)" ]; then
    COMMIT="$COMMIT+dirty"
fi
v() { echo "${R[$1]:-n/a}"; }
LINE="$(date -u +%Y-%m-%dT%H:%M:%SZ) store-delivery v2 commit=$COMMIT cpus=$(nproc) fs=$FS dirs=$DIRS \
load_before=$LOAD_BEFORE load_after=$(cut -d' ' -f1 /proc/loadavg) \
messages=$MESSAGES size=$SIZE rcpts=$RCPTS sessions=$SESSIONS \
single_dovecot_per_s=$(v single_dovecot_rate) single_campusmail_per_s=$(v single_campusmail_rate) \
single_ratio=$(ratio "$(v single_campusmail_rate)" "$(v single_dovecot_rate)") \
single_dovecot_kib=$(v single_dovecot_kib) single_campusmail_kib=$(v single_campusmail_kib) \
single_dovecot_cpu_s=$(v single_dovecot_cpu) single_campusmail_cpu_s=$(v single_campusmail_cpu) \
multi_dovecot_per_s=$(v multi_dovecot_rate) multi_campusmail_per_s=$(v multi_campusmail_rate) \
multi_ratio=$(ratio "$(v multi_campusmail_rate)" "$(v multi_dovecot_rate)") \
multi_dovecot_kib=$(v multi_dovecot_kib) multi_campusmail_kib=$(v multi_campusmail_kib) \
multi_dovecot_cpu_s=$(v multi_dovecot_cpu) multi_campusmail_cpu_s=$(v multi_campusmail_cpu) \
reads=$READS reads_dovecot_files_per_s=$(v reads_dovecot) reads_campusmail_https_per_s=$(v reads_campusmail) \
big_rcpts=$BIG_RCPTS big_size=$BIG_SIZE big_chunk=$BIG_CHUNK \
big_dovecot_rcpt_per_s=$(v big_dovecot_rate) big_campusmail_rcpt_per_s=$(v big_campusmail_rate) \
big_dovecot_kib=$(v big_dovecot_kib) big_campusmail_kib=$(v big_campusmail_kib) \
single_campusmail_dirs=$(v single_campusmail_dirs) reads_campusmail_dirs=$(v reads_campusmail_dirs) \
big_campusmail_before_kib=$(v big_campusmail_before_kib) big_campusmail_total_kib=$(v big_campusmail_total_kib) \
big_campusmail_blob_kib=$(v big_campusmail_blob_kib) big_copies_kib=$(v big_copies_kib) \
big_size_ratio=$(ratio "$(v big_dovecot_kib)" "$(v big_campusmail_kib)") \
big_copies_ratio=$(ratio "$(v big_copies_kib)" "$(v big_campusmail_kib)") \
big_dovecot_files=$(v big_dovecot_files) big_dovecot_inodes=$(v big_dovecot_inodes) \
import_secs=${IMPORT_SECS:-n/a}"
echo "$LINE"
echo "$LINE" >>"$RESULTS"
