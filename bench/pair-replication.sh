#!/usr/bin/env bash
# Replication lag and catch-up of the active-active pair (issue #8).
#
# Two campusmail nodes (release build, each its own temp folder and ports)
# are paired on loopback with `pair init` / `pair join`. A Python load
# generator then, for DURATION seconds, delivers RATE messages a second
# over SMTP, alternating between the nodes, and marks a message read or
# unread on node A's webmail FLAGS times a second (HTTPS, with the session
# cookie and CSRF token like a browser).
#   1. steady: replication lag = the time from when a node made a change
#      (its HLC timestamp) to when the peer applied it, as each node
#      records for its last 4096 changes (`campusmail pair status`);
#      p50/p99 of both directions;
#   2. catch-up: node B is stopped for PARTITION seconds (default 600, the
#      issue's ten minutes) while the load goes on at A; then B starts and
#      we time how long until it is behind by 0 changes again;
#   3. seeding: the load stops, B's store is wiped (a replaced disk) and B
#      started again; we time how long until it serves (it holds back
#      until it is seeded from A's snapshot and the log after it).
# Both nodes share this machine's clock, so the lag is exact here; on two
# machines it also includes their NTP offset.
#
# Usage: bash bench/pair-replication.sh   (DURATION=60 RATE=10 FLAGS=5 PARTITION=600)
# BIN=target/debug/campusmail runs a given build instead of building release
# (a quick trial of the script; its numbers are not results).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60}
RATE=${RATE:-10}
FLAGS=${FLAGS:-5}
PARTITION=${PARTITION:-600}

if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$PWD/target/release/campusmail
fi
BIN=$(realpath "$BIN")
WORK=$(mktemp -d /tmp/campusmail-pair.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# make_node NAME: a node with its own ports; prints "smtp https link".
make_node() {
  local name=$1 conf=$WORK/$1/appliance.toml
  "$BIN" --config "$conf" init >/dev/null
  local smtp sub subs lmtp https http engine
  smtp=$(port); sub=$(port); subs=$(port); lmtp=$(port); https=$(port); http=$(port); engine=$(port)
  python3 - "$conf" "$name" "$smtp" "$sub" "$subs" "$lmtp" "$https" "$http" "$engine" <<'EOF'
import re, sys
p, name, smtp, sub, subs, lmtp, https, http, engine = sys.argv[1:]
s = open(p).read()
for old, new in [("2525", smtp), ("2587", sub), ("2465", subs), ("2424", lmtp), ("8443", https), ("8080", http)]:
    s = s.replace("127.0.0.1:" + old, "127.0.0.1:" + new)
s = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', s, count=1)
s = s.replace('engine_listen = ""', f'engine_listen = "127.0.0.1:{engine}"', 1)
open(p, "w").write(s)
EOF
  "$BIN" --config "$conf" domain add campus.test >/dev/null
  echo 'bench-password' | "$BIN" --config "$conf" user add bench@campus.test --password-stdin >/dev/null
  echo "$smtp $https $engine"
}
start_node() {
  local name=$1
  "$BIN" --config "$WORK/$name/appliance.toml" run >"$WORK/$name.out" 2>"$WORK/$name.err" & PIDS+=($!)
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 150); do grep -q '^ready' "$WORK/$name.out" 2>/dev/null && return; sleep 0.2; done
  echo "$name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}
read -r SMTP_A HTTPS_A ENGINE_A < <(make_node node-a)
read -r SMTP_B HTTPS_B ENGINE_B < <(make_node node-b)
CONF_A=$WORK/node-a/appliance.toml CONF_B=$WORK/node-b/appliance.toml
sed -i "s/^engine_peer = \"\"/engine_peer = \"127.0.0.1:$ENGINE_B\"/" "$CONF_A"
sed -i "s/^engine_peer = \"\"/engine_peer = \"127.0.0.1:$ENGINE_A\"/" "$CONF_B"
LINK_A=$(port); LINK_B=$(port)
TOKEN=$("$BIN" --config "$CONF_A" pair init --listen "127.0.0.1:$LINK_A" | awk '/campusmail pair join/ {print $NF}')
start_node node-a
"$BIN" --config "$CONF_B" pair join --listen "127.0.0.1:$LINK_B" "$TOKEN" >/dev/null
start_node node-b

RESULT=$(python3 - "$BIN" "$CONF_A" "$CONF_B" "$SMTP_A" "$SMTP_B" "$HTTPS_A" "$DURATION" "$RATE" "$FLAGS" "$PARTITION" "$WORK" <<'EOF'
import http.client, re, shutil, smtplib, ssl, subprocess, sys, threading, time, urllib.parse

binary, conf_a, conf_b, smtp_a, smtp_b, https_a = sys.argv[1:7]
duration, rate, flags, partition = float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9]), float(sys.argv[10])
work = sys.argv[11]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def status(conf):
    return subprocess.run([binary, "--config", conf, "pair", "status"], capture_output=True, text=True).stdout

def lag(conf):
    m = re.search(r"p50 (\d+) ms, p99 (\d+) ms", status(conf))
    return (int(m.group(1)), int(m.group(2))) if m else None

class Webmail:
    def __init__(self, port):
        self.port, self.cookies = int(port), {}
    def request(self, method, path, fields=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, value = v.split(";")[0].partition("=")
                self.cookies[name.strip()] = value
        text = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, text
    @staticmethod
    def csrf(page):
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    def login(self):
        _, page = self.request("GET", "/login")
        self.request("POST", "/login", [("address", "bench@campus.test"), ("password", "bench-password"), ("csrf_token", self.csrf(page))])

stop = threading.Event()
sent = [0]
def deliver():
    clients = [smtplib.SMTP("127.0.0.1", int(p), timeout=60) for p in (smtp_a, smtp_b)]
    i = 0
    while not stop.is_set():
        start = time.time()
        c = clients[i % 2] if not partitioned.is_set() else clients[0]
        try:
            c.sendmail("load@example.org", ["bench@campus.test"], f"From: load@example.org\r\nTo: bench@campus.test\r\nSubject: load {i}\r\n\r\nsteady load\r\n")
            sent[0] += 1
        except (smtplib.SMTPException, OSError):
            clients[i % 2] = smtplib.SMTP("127.0.0.1", int((smtp_a, smtp_b)[i % 2]), timeout=60) if not partitioned.is_set() else clients[i % 2]
        i += 1
        time.sleep(max(0.0, 1.0 / rate - (time.time() - start)))

flagged = [0]
def flag():
    web = Webmail(https_a); web.login()
    n = 0
    while not stop.is_set():
        start = time.time()
        _, page = web.request("GET", "/mail")
        ids = re.findall(r'href="/mail/message/([^"]+)"', page)
        if ids:
            action = "read" if n % 2 == 0 else "unread"
            web.request("POST", "/mail/actions", [("csrf_token", web.csrf(page)), ("action", action), ("m", ids[n % len(ids)])])
            flagged[0] += 1
        n += 1
        time.sleep(max(0.0, 1.0 / flags - (time.time() - start)))

partitioned = threading.Event()
threads = [threading.Thread(target=deliver), threading.Thread(target=flag)]
for t in threads: t.start()
time.sleep(duration)
steady_a, steady_b = lag(conf_a), lag(conf_b)  # A: B's changes applied at A; B: A's at B
steady_sent, steady_flags = sent[0], flagged[0]

# Catch-up: stop B, keep the load on A, start B again.
partitioned.set()
pid_b = int(open(f"{work}/node-b.pid").read())
subprocess.run(["kill", str(pid_b)])
time.sleep(partition)
out = open(f"{work}/node-b.out", "w"); err = open(f"{work}/node-b.err", "a")
b = subprocess.Popen([binary, "--config", conf_b, "run"], stdout=subprocess.PIPE, stderr=err, text=True)
for line in b.stdout:
    if line.strip() == "ready":
        break
started = time.time()
caught = None
while time.time() - started < 600:
    s = status(conf_b)
    if "link: up" in s and re.search(r"behind on node-a: (\d+)", s) and re.search(r"behind on node-a: (\d+)", s).group(1) == "0":
        caught = time.time() - started
        break
    time.sleep(0.2)
stop.set()
for t in threads: t.join()
b.terminate(); b.wait()

# Seeding: B's store is gone; B serves once it is seeded from A.
shutil.rmtree(f"{work}/node-b/store")
err = open(f"{work}/node-b.seed.err", "w")
started = time.time()
b = subprocess.Popen([binary, "--config", conf_b, "run"], stdout=subprocess.PIPE, stderr=err, text=True)
for line in b.stdout:
    if line.strip() == "ready":
        break
seed_s = time.time() - started
b.terminate(); b.wait()
m = re.search(r"seeded from node-a's snapshot: (\d+) message\(s\), \d+ blob\(s\), (\d+) byte", open(f"{work}/node-b.seed.err").read())
seeded = f"seed_s={seed_s:.1f} seed_messages={m.group(1)} seed_bytes={m.group(2)}" if m else f"seed_s={seed_s:.1f} seeded=not-from-a-snapshot"
fmt = lambda l: f"p50={l[0]}ms p99={l[1]}ms" if l else "none"
print(f"steady_s={duration:.0f} mail_per_s={rate:g} flags_per_s={flags:g} sent={steady_sent} flag_changes={steady_flags} "
      f"lag_a_to_b=[{fmt(steady_b)}] lag_b_to_a=[{fmt(steady_a)}] partition_s={partition:.0f} "
      f"catch_up_s={'%.1f' % caught if caught is not None else 'not-caught-up'} {seeded}")
EOF
)
LINE="$(date -u +%Y-%m-%dT%H:%M:%SZ) pair-replication v2 commit=$(git rev-parse --short HEAD) cpus=$(nproc) $RESULT"
echo "$LINE"
echo "$LINE" >> bench/results.txt
