#!/usr/bin/env bash
# Runs every adapterd benchmark on this machine, beside the peer baselines measured in the same
# run, prints a summary and writes bench/RESULTS.md.
#
#   bench/run.sh                      (from anywhere; needs cmake, a C++20 compiler, node >= 20, npm)
#   bench/run.sh --only translate     steps 1-4 and 6 only (~5 min): parse and translate rounds,
#                                     then only the Translate section and its Targets row of
#                                     RESULTS.md are rewritten; the rest of the file is kept
#   bench/run.sh --only delivery      step 7 only (~4 min once the machine is quiet): the
#                                     delivery section and its Targets rows
#
# What it does, in order:
#   1. builds adapterd, parse_bench, translate_bench and mllp_load in a Release tree of its own
#      ($BENCH_BUILD_DIR, default build-bench/), so that it never reconfigures the tree other
#      people build in;
#   2. installs the pinned peers into bench/peers/node_modules (npm ci: package-lock.json);
#   3. waits (bounded) for the machine to be quiet, records it, and probes the store's disk;
#   4. parse and translate, $BENCH_REPEAT rounds of: parse_bench, translate_bench (checked first
#      against what `adapterd translate` prints for the same bytes) and the peers' bench.mjs
#      (hl7parser parse+get);
#   5. MLLP: starts adapterd (temp config, fresh store on the same disk as the repo, fsync on,
#      log level warn) and the non-storing @medplum/hl7 receiver, then per round runs mllp_load
#      against both at 1 and 16 connections (closed loop, >= $BENCH_MLLP_SECONDS s each) and at
#      $BENCH_RATE msg/s offered (open loop, $BENCH_RATE_SECONDS s); records CPU per message of
#      each receiver and adapterd's peak RSS (VmHWM);
#   6. bench/summarize.mjs turns the RESULT lines into the summary and RESULTS.md;
#   7. bench/delivery_bench.py: MLLP in to FHIR server stored against a direct POST loop of the same
#      Bundles to the same (test) FHIR server, alternating, with the server's validation off
#      (throughput) and on; waits for a quiet machine itself; rewrites section 4 of RESULTS.md and
#      its Targets rows.
# Everything it starts is stopped on exit, and the temp store is deleted (BENCH_KEEP=1 keeps it).
# The figures come from whatever the checkout holds: the commit line of RESULTS.md says when
# files outside bench/ had uncommitted changes.
#
# Knobs (environment): BENCH_REPEAT (3), BENCH_MLLP_SECONDS (6), BENCH_RATE (1000),
# BENCH_RATE_SECONDS (12), BENCH_RATE_CONNS (16), BENCH_BUILD_DIR, BENCH_JOBS (2),
# BENCH_ALL_PEERS (0: only the peers the targets need; 1: all eight npm parsers),
# BENCH_MAX_LOAD (0.8) and BENCH_WAIT_IDLE (300 s): how quiet the machine must be and for how
# long to wait for it, BENCH_RESULTS (bench/RESULTS.md), BENCH_KEEP (0),
# BENCH_DELIVERY_MESSAGES (500) and BENCH_DELIVERY_VALIDATED (100): messages per side and round
# of the delivery bench without and with the server's validation (0: no validated rounds).
set -euo pipefail

ONLY=""  # "": everything; "translate": parse + translate rounds and the Translate section only
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    *) ONLY="?"; break ;;
  esac
done
if [ "$ONLY" != "" ] && [ "$ONLY" != translate ] && [ "$ONLY" != delivery ]; then
  echo "usage: bench/run.sh [--only translate|delivery]" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
REPEAT=${BENCH_REPEAT:-3}
MLLP_SECONDS=${BENCH_MLLP_SECONDS:-6}
RATE=${BENCH_RATE:-1000}
RATE_SECONDS=${BENCH_RATE_SECONDS:-12}
RATE_CONNS=${BENCH_RATE_CONNS:-16}
JOBS=${BENCH_JOBS:-2}
MAX_LOAD=${BENCH_MAX_LOAD:-0.8}
WAIT_IDLE=${BENCH_WAIT_IDLE:-300}
OUT=${BENCH_RESULTS:-$HERE/RESULTS.md}
MESSAGE=$ROOT/fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7
PEERS=$HERE/peers
COMMAND="bench/run.sh${ONLY:+ --only $ONLY}"
for v in BENCH_REPEAT BENCH_MLLP_SECONDS BENCH_RATE BENCH_RATE_SECONDS BENCH_RATE_CONNS \
         BENCH_ALL_PEERS BENCH_MAX_LOAD BENCH_WAIT_IDLE BENCH_DELIVERY_MESSAGES BENCH_DELIVERY_VALIDATED; do
  if [ -n "${!v:-}" ]; then COMMAND="$v=${!v} $COMMAND"; fi
done

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cmake node npm; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# ---------------------------------------------------------------------------------------------
# 1-2. Build and install peers

TARGETS=(adapterd parse_bench translate_bench)
[ "$ONLY" = translate ] || TARGETS+=(mllp_load)
[ "$ONLY" != delivery ] || TARGETS=(adapterd)
log "building ${TARGETS[*]} (Release) in $BUILD"
mkdir -p "$BUILD"
# Build output goes to a log (shown on failure): compiler warnings in adapter/ are not this
# script's news, and would bury its own output.
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DADAPTER_BUILD_TESTS=OFF \
  -DADAPTER_BUILD_BENCH=ON >"$BUILD/bench-build.log" 2>&1 &&
  cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" >>"$BUILD/bench-build.log" 2>&1 ||
  { tail -40 "$BUILD/bench-build.log" >&2; die "build failed (log: $BUILD/bench-build.log)"; }
ADAPTERD=$BUILD/adapter/adapterd
PARSE_BENCH=$BUILD/bench/parse_bench
TRANSLATE_BENCH=$BUILD/bench/translate_bench
MLLP_LOAD=$BUILD/bench/mllp_load

# 7. Delivery: its own servers and messages; run here for --only delivery, after 6 otherwise.
delivery_bench() {
  log "installing the test FHIR server's pinned packages (tests/fhir_server)"
  npm ci --prefix "$ROOT/tests/fhir_server" --no-audit --no-fund --loglevel=error >/dev/null
  log "delivery: ${BENCH_DELIVERY_MESSAGES:-500} messages (${BENCH_DELIVERY_VALIDATED:-100} validated), $REPEAT rounds"
  /usr/bin/python3 "$HERE/delivery_bench.py" --adapterd "$ADAPTERD" --command "$COMMAND" \
    --messages "${BENCH_DELIVERY_MESSAGES:-500}" --validated-messages "${BENCH_DELIVERY_VALIDATED:-100}" \
    --rounds "$REPEAT" --max-load "$MAX_LOAD" --wait-idle "$WAIT_IDLE" --update-results "$OUT" >&2
  log "wrote the Delivery section and its Targets rows of $OUT"
}
if [ "$ONLY" = delivery ]; then
  delivery_bench
  exit 0
fi

log "installing pinned peers into $PEERS/node_modules"
NPM_OMIT=(--omit=optional)
if [ "${BENCH_ALL_PEERS:-0}" = 1 ]; then NPM_OMIT=(); fi
(cd "$PEERS" && npm ci --no-audit --no-fund "${NPM_OMIT[@]}" >/dev/null)

# ---------------------------------------------------------------------------------------------
# Temp dir (store included) on the same disk as the repo, and cleanup

WORK=$(mktemp -d "$BUILD/bench-run.XXXXXX")
RESULTS=$WORK/results.txt
: >"$RESULTS"
ADAPTERD_PID=""
RECEIVER_PID=""

stop_pid() {  # stop_pid PID: TERM, up to 5 s to exit, then KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$ADAPTERD_PID"
  stop_pid "$RECEIVER_PID"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

info() { printf 'INFO %s\t%s\n' "$1" "$2" >>"$RESULTS"; }
result() { printf 'RESULT %s\n' "$*" >>"$RESULTS"; }

# ---------------------------------------------------------------------------------------------
# 3. Machine, quiet check, disk probe

loadavg() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }' && [ "$waited" -lt "$WAIT_IDLE" ]; do
  [ $((waited % 30)) -eq 0 ] && log "load average $(loadavg) > $MAX_LOAD: waiting for a quiet machine"
  sleep 5
  waited=$((waited + 5))
done

info date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
info command "$COMMAND"
# Changes under bench/ do not alter what is measured; anything else uncommitted does.
info commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" status --porcelain -- . ':!bench' 2>/dev/null | grep -q . && echo ' + uncommitted changes outside bench/')"
info nproc "$(nproc)"
info cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
info kernel "$(uname -srm)"
info memory "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
info os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -o)"
info compiler "$(c++ --version 2>/dev/null | head -1)"
info node "$(node --version)"
info sqlite "$(dpkg-query -W -f '${Version}' libsqlite3-0 2>/dev/null || echo unknown)"
DEV=$(df --output=source "$WORK" | tail -1)
FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -1 || echo '?')
ROT=$(cat "/sys/block/$(basename "$DEV")/queue/rotational" 2>/dev/null || echo '?')
info disk "$DEV ($FSTYPE, rotational=$ROT), store in $BUILD"
info load_before "$(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited} s for <= $MAX_LOAD)"

# The floor under any durable commit: one O_DSYNC 4 KiB write, appending (the file grows, as a
# WAL does until its first checkpoint) and overwriting (a WAL being reused after one).
dsync_us() {  # dsync_us ARGS...: microseconds per 4 KiB O_DSYNC write
  dd if=/dev/zero of="$WORK/dsync.probe" bs=4k count=500 oflag=dsync "$@" 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.0f\n", $(i - 1) * 1e6 / 500 }'
}
APPEND_US=$(rm -f "$WORK/dsync.probe"; dsync_us)
OVERWRITE_US=$(dsync_us conv=notrunc)
rm -f "$WORK/dsync.probe"
result "disk dsync_append_us=$APPEND_US dsync_overwrite_us=$OVERWRITE_US"
log "disk: O_DSYNC 4 KiB write ${APPEND_US} us appending, ${OVERWRITE_US} us overwriting"

# ---------------------------------------------------------------------------------------------
# 4. Parse and translate: parse_bench, translate_bench and bench.mjs, interleaved so that each
# round's ratios share conditions

# What `adapterd translate` prints for the message with the line ends every bench uses (CR, as
# bench.mjs and the benches turn LF into): translate_bench must produce the same Bundle, or it
# would time another template, other settings or an early failure. The output holds the SHA-256
# of the input bytes, so the CLI must read exactly the bytes the bench maps. Run from the
# repository root: the compiled-in configuration reads ./mappings, as translate_bench does.
node -e 'const fs = require("fs");
         fs.writeFileSync(process.argv[2], fs.readFileSync(process.argv[1], "utf8")
           .replace(/\r?\n/g, "\r").replace(/\r+$/, ""));' "$MESSAGE" "$WORK/message_cr.hl7"
(cd "$ROOT" && "$ADAPTERD" translate "$WORK/message_cr.hl7") >"$WORK/translate_cli.json" \
  2>"$WORK/translate_cli.txt" || { cat "$WORK/translate_cli.txt" >&2; die "adapterd translate failed"; }

for round in $(seq "$REPEAT"); do
  log "parse round $round/$REPEAT: parse_bench"
  line=$("$PARSE_BENCH" "$MESSAGE" | tee "$WORK/parse_bench.$round.txt" | grep '^RESULT parse_bench')
  result "parse_bench round=$round ${line#RESULT parse_bench }"
  log "parse round $round/$REPEAT: translate_bench"
  line=$("$TRANSLATE_BENCH" --expect "$WORK/translate_cli.json" "$MESSAGE" |
    tee "$WORK/translate_bench.$round.txt" | grep '^RESULT translate_bench') ||
    die "translate_bench failed: see its report above"
  result "translate_bench round=$round ${line#RESULT translate_bench }"
  log "  $(grep '^target:' "$WORK/translate_bench.$round.txt")"
  log "parse round $round/$REPEAT: bench.mjs"
  (cd "$PEERS" && node --expose-gc bench.mjs "$MESSAGE") >"$WORK/bench_mjs.$round.txt"
  # "hl7parser@1.0.1: parse 39840777/s [38392345-40113533], parse+get 171936/s [168627-174192],
  #  heap 9.4 KB/msg; ..."
  for lib in hl7parser '@medplum/core (Hl7Message)'; do
    row=$(grep -F "$lib@" "$WORK/bench_mjs.$round.txt" | head -1) || die "bench.mjs printed no $lib line"
    name=$(echo "$lib" | sed 's/ .*//; s/[@\/]/_/g; s/^_//')
    echo "$row" | sed -E 's/^[^:]*@([^:]*): parse ([0-9.]+)\/s \[([0-9.]+)-([0-9.]+)\], parse\+get ([0-9.]+)\/s \[([0-9.]+)-([0-9.]+)\], heap ([0-9.]+) KB\/msg.*/\1 \2 \3 \4 \5 \6 \7 \8/' |
      { read -r ver p pmin pmax g gmin gmax kb
        result "peer_parse lib=$name version=$ver round=$round parse=$p parse_min=$pmin parse_max=$pmax get=$g get_min=$gmin get_max=$gmax heap_kb=$kb"; }
  done
done

if [ "$ONLY" = translate ]; then
  info load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
  node "$HERE/summarize.mjs" "$RESULTS" "$OUT" --only translate
  log "wrote the Translate section and its Targets row of $OUT"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# 5. MLLP: adapterd and the peer receiver, same client

free_port() {
  node -e 'const s = require("net").createServer();
           s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
http_get() {  # http_get PORT PATH: prints the body, fails unless 200
  node -e 'require("http").get({ host: "127.0.0.1", port: +process.argv[1], path: process.argv[2] },
             (r) => { let b = ""; r.on("data", (d) => (b += d));
                      r.on("end", () => { process.stdout.write(b); process.exit(r.statusCode === 200 ? 0 : 1); }); })
           .on("error", () => process.exit(1));' "$1" "$2"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

# Log level warn keeps logging off the measured path; it also hides the "listener.started" line
# that reports a port picked by the kernel, so the ports are chosen here.
MLLP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
mkdir -p "$WORK/store"
cat >"$WORK/adapterd.json" <<EOF
{
  // bench/run.sh: the shipped defaults (io_threads 2, max_batch 512, WAL + synchronous=FULL)
  // with a fresh store, fixed ports and less logging.
  "instance": "adapterd-bench",
  "store": { "kind": "sqlite", "path": "$WORK/store/adapterd.db" },
  "listeners": { "mllp": [ { "name": "bench", "bind": "127.0.0.1", "port": $MLLP_PORT } ] },
  "admin": { "enabled": true, "bind": "127.0.0.1", "port": $ADMIN_PORT },
  "log": { "level": "warn" }
}
EOF
log "starting adapterd (MLLP $MLLP_PORT, admin $ADMIN_PORT, store $WORK/store)"
"$ADAPTERD" serve --config "$WORK/adapterd.json" 2>"$WORK/adapterd.log" &
ADAPTERD_PID=$!
for _ in $(seq 100); do
  http_get "$ADMIN_PORT" /healthz >/dev/null 2>&1 && break
  kill -0 "$ADAPTERD_PID" 2>/dev/null || { cat "$WORK/adapterd.log" >&2; die "adapterd exited"; }
  sleep 0.1
done
http_get "$ADMIN_PORT" /healthz >/dev/null || die "adapterd not healthy"

log "starting the @medplum/hl7 receiver"
(cd "$PEERS" && exec node mllp_receiver.mjs 0) >"$WORK/receiver.log" 2>&1 &
RECEIVER_PID=$!
for _ in $(seq 100); do
  grep -q '^listening' "$WORK/receiver.log" && break
  kill -0 "$RECEIVER_PID" 2>/dev/null || { cat "$WORK/receiver.log" >&2; die "receiver exited"; }
  sleep 0.1
done
PEER_PORT=$(sed -n 's/^listening 127\.0\.0\.1://p' "$WORK/receiver.log")
[ -n "$PEER_PORT" ] || die "receiver did not report its port"
HL7_VERSION=$(cd "$PEERS" && node -p 'JSON.parse(require("fs").readFileSync("node_modules/@medplum/hl7/package.json")).version')
info receivers "adapterd $("$ADAPTERD" version | cut -d' ' -f2) (SQLite, WAL, synchronous=FULL) on 127.0.0.1:$MLLP_PORT; @medplum/hl7 $HL7_VERSION mllp_receiver.mjs (stores nothing) on 127.0.0.1:$PEER_PORT"

pid_of() { if [ "$1" = adapterd ]; then echo "$ADAPTERD_PID"; else echo "$RECEIVER_PID"; fi; }
port_of() { if [ "$1" = adapterd ]; then echo "$MLLP_PORT"; else echo "$PEER_PORT"; fi; }

FAILED_RUNS=0
field() { echo "$1" | sed -E "s/.* $2=([^ ]+).*/\\1/"; }  # field LINE KEY: the value of KEY=value
# mllp TARGET ROUND N C [--rate R]: one mllp_load run, its RESULT line, the receiver's CPU.
mllp() {
  local target=$1 round=$2 n=$3 c=$4
  shift 4
  local pid port before after out rc=0
  pid=$(pid_of "$target")
  port=$(port_of "$target")
  kill -0 "$pid" 2>/dev/null || die "$target is not running"
  before=$(cpu_ticks "$pid")
  out=$("$MLLP_LOAD" 127.0.0.1 "$port" "$n" "$c" --warmup 20 --label "$target" "$@") || rc=$?
  after=$(cpu_ticks "$pid")
  echo "$out" >>"$WORK/mllp_load.txt"
  if [ "$rc" -ne 0 ]; then
    FAILED_RUNS=$((FAILED_RUNS + 1))
    log "FAILED: mllp_load against $target (n=$n c=$c $*) exited $rc:"
    echo "$out" | grep -E 'FAILED|errors' | head -12 >&2
  fi
  local line ok
  line=$(echo "$out" | grep '^RESULT mllp_load') || die "mllp_load printed no RESULT"
  ok=$(field "$line" ok)
  # Receiver CPU per message, warm-up included (20 per connection), from /proc ticks.
  local cpu
  cpu=$(awk -v t=$((after - before)) -v hz="$TICK" -v m=$((ok + 20 * c)) \
    'BEGIN { printf "%.1f", (m > 0 ? t * 1e6 / hz / m : 0) }')
  result "mllp target=$target round=$round rc=$rc receiver_cpu_us_per_msg=$cpu ${line#RESULT mllp_load }"
  LAST_RATE=$(field "$line" msgs_per_s)
  log "  $target: $LAST_RATE msg/s, ACK p50 $(field "$line" p50_ms) ms, p99 $(field "$line" p99_ms) ms, receiver CPU $cpu us/msg"
}

# Messages for a closed-loop run of >= MLLP_SECONDS at the rate last seen, with a margin: 50%
# after the short calibration run (its rate is the least reliable), 20% after a full run.
count_for() {
  awk -v r="$1" -v s="$MLLP_SECONDS" -v m="$2" \
    'BEGIN { n = int(r * s * m / 100 + 1) * 100; print (n < 2000 ? 2000 : n) }'
}

declare -A EST
log "MLLP: calibration and warm-up runs (not reported)"
for target in adapterd peer; do
  for c in 1 16; do
    "$MLLP_LOAD" 127.0.0.1 "$(port_of "$target")" $((c == 1 ? 2000 : 8000)) "$c" --warmup 20 \
      --label "calibrate-$target" >"$WORK/calibrate.txt" || die "calibration run against $target failed: $(grep -E 'FAILED' "$WORK/calibrate.txt" | head -3)"
    EST[$target.$c]=$(sed -nE 's/^RESULT .* msgs_per_s=([0-9.]+).*/\1/p' "$WORK/calibrate.txt")
  done
done

for round in $(seq "$REPEAT"); do
  # Alternate who goes first, so that neither side always runs on a warmer (or busier) machine.
  if [ $((round % 2)) -eq 1 ]; then order="adapterd peer"; else order="peer adapterd"; fi
  for c in 1 16; do
    for target in $order; do
      log "MLLP round $round/$REPEAT: $target, $c connection(s)"
      mllp "$target" "$round" "$(count_for "${EST[$target.$c]}" "$([ "$round" = 1 ] && echo 1.5 || echo 1.2)")" "$c"
      EST[$target.$c]=$LAST_RATE
    done
  done
  for target in $order; do
    log "MLLP round $round/$REPEAT: $target, $RATE msg/s offered over $RATE_CONNS connections"
    mllp "$target" "$round" $((RATE * RATE_SECONDS)) "$RATE_CONNS" --rate "$RATE"
  done
done

# For reference only: the peers' own JS client against the peer receiver (cross-client figures
# are not used in any ratio).
log "reference: peers' mllp_bench.mjs (JS client) against the peer receiver"
if js=$(cd "$PEERS" && node mllp_bench.mjs 3000 1 "127.0.0.1:$PEER_PORT" 2>&1); then
  echo "$js" | sed -nE 's/.* ([0-9]+) msg\/s, ACK latency p50 ([0-9.]+) ms p99 ([0-9.]+) ms.*/RESULT js_client target=peer n=3000 c=1 msgs_per_s=\1 p50_ms=\2 p99_ms=\3/p' >>"$RESULTS"
fi

metrics=$(http_get "$ADMIN_PORT" /metrics || true)
accepted=$(echo "$metrics" | awk '/^adapterd_mllp_messages_accepted_total/ { print $2 }')
failures=$(echo "$metrics" | awk '/^adapterd_mllp_store_failures_total/ { print $2 }')
result "rss target=adapterd vmhwm_kb=$(vm_kb "$ADAPTERD_PID" VmHWM) vmrss_kb=$(vm_kb "$ADAPTERD_PID" VmRSS) accepted=${accepted:-?} store_failures=${failures:-?} store_bytes=$(du -sb "$WORK/store" | cut -f1)"
result "rss target=peer vmhwm_kb=$(vm_kb "$RECEIVER_PID" VmHWM) vmrss_kb=$(vm_kb "$RECEIVER_PID" VmRSS)"
if grep -q '"level":"error"' "$WORK/adapterd.log"; then
  log "adapterd logged errors:"
  grep '"level":"error"' "$WORK/adapterd.log" | head -5 >&2
  FAILED_RUNS=$((FAILED_RUNS + 1))
fi
info load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
info failed_runs "$FAILED_RUNS"
stop_pid "$ADAPTERD_PID"
stop_pid "$RECEIVER_PID"

# ---------------------------------------------------------------------------------------------
# 6. Summary and RESULTS.md

node "$HERE/summarize.mjs" "$RESULTS" "$OUT"
log "wrote $OUT"
delivery_bench
[ "$FAILED_RUNS" -eq 0 ] || die "$FAILED_RUNS run(s) failed: see above"
