#!/usr/bin/env bash
# pingpost side by side with Redis, on this machine, in one run.
#
#   loadtest/compare-redis.sh            # from the repository root
#
# 1. Makes sure redis-server and redis-benchmark are here (installs the OS packages with
#    apt-get if they are not; says so and stops if that is impossible).
# 2. Starts redis-server on a loopback port (no persistence), runs
#    `redis-benchmark -t ping -c 50 -P 1` and `-P 16` (--csv) and reads the PING_MBULK rate.
# 3. Runs pingpost-loadtest in closed loop with the same 50 connections and 1, then 16,
#    requests in flight, against `pingpost serve` it starts itself (--spawn-daemon): a
#    10k-campaign book loaded over the admin protocol, the journal on with the interval policy.
# 4. Prints each throughput and the ratio pingpost / Redis, then one open-loop run at a fixed
#    rate for latency (p50, p99, p99.9 corrected for coordinated omission).
#
# Every run is bounded: redis-benchmark by its request count, the generator by DURATION.
# Settings (environment):
#   REDIS_PORT (6390)  REDIS_REQUESTS (1000000 at -P 1; 16 times that at -P 16)
#   DURATION (10s)  OPEN_RATE (50000)  CAMPAIGNS (10000)  FSYNC (interval=2)
#   PINGPOST_ADMIN_ID (1)  PINGPOST_ADMIN_SECRET (admin-demo-secret): the admin the daemon is started with
#   DAEMON_ARGS: more arguments for `pingpost serve`, e.g. "--config pingpost.toml"
#   OUT (a temporary directory): where the JSON reports and logs are kept
#   PINGPOST (target/release/pingpost): the daemon binary; point it at
#     target/release/pingpost-fake-exchange to measure the generator's own ceiling
set -euo pipefail

REDIS_PORT=${REDIS_PORT:-6390}
REDIS_REQUESTS=${REDIS_REQUESTS:-1000000}
DURATION=${DURATION:-10s}
OPEN_RATE=${OPEN_RATE:-50000}
CAMPAIGNS=${CAMPAIGNS:-10000}
FSYNC=${FSYNC:-interval=2}
export PINGPOST_ADMIN_SECRET=${PINGPOST_ADMIN_SECRET:-admin-demo-secret}
ADMIN_ID=${PINGPOST_ADMIN_ID:-1}
DAEMON_ARGS=${DAEMON_ARGS:-}
OUT=${OUT:-$(mktemp -d -t pingpost-compare-XXXXXX)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CONNECTIONS=50

say() { printf '%s\n' "$*"; }
fail() { printf 'compare-redis: %s\n' "$*" >&2; exit 1; }

cd "$(dirname "$0")/.."
mkdir -p "$OUT"

# --- Redis, from the OS packages if missing -------------------------------------------------
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    say "redis-server or redis-benchmark is missing: installing the OS packages (apt-get)"
    if ! command -v apt-get >/dev/null; then
        say "compare-redis: no apt-get on this machine; install redis-server and redis-tools" \
            "by hand and run this again. Nothing was measured."
        exit 3
    fi
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then SUDO=sudo; else
            say "compare-redis: installing needs root and there is no sudo; install" \
                "redis-server and redis-tools by hand and run this again. Nothing was measured."
            exit 3
        fi
    fi
    if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server redis-tools; } \
        >"$OUT/apt.log" 2>&1; then
        say "compare-redis: apt-get could not install Redis (see $OUT/apt.log). Nothing was measured."
        exit 3
    fi
fi

say "building pingpost and pingpost-loadtest (release)"
cargo build --release --quiet -p pingpost -p pingpost-loadtest
PINGPOST=${PINGPOST:-$TARGET_DIR/release/pingpost}
LOADTEST="$TARGET_DIR/release/pingpost-loadtest"

REDIS_PID=
cleanup() { if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$OUT/redis-server.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do
    if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then break; fi
    sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] \
    || fail "redis-server did not answer on 127.0.0.1:$REDIS_PORT (see $OUT/redis-server.log)"

# The requests per second of PING_MBULK (the usual command form), else PING_INLINE, from the
# CSV redis-benchmark prints: "test","rps",...
redis_rps() {
    local csv=$1
    local line
    line=$(grep '^"PING_MBULK"' "$csv" || grep '^"PING_INLINE"' "$csv" || true)
    [ -n "$line" ] || fail "no PING line in $csv"
    printf '%s\n' "$line" | cut -d, -f2 | tr -d '"'
}

say "redis-benchmark: PING, $CONNECTIONS connections, 1 in flight"
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t ping -c "$CONNECTIONS" -n "$REDIS_REQUESTS" \
    -P 1 --csv >"$OUT/redis-p1.csv"
REDIS_P1=$(redis_rps "$OUT/redis-p1.csv")
say "redis-benchmark: PING, $CONNECTIONS connections, 16 in flight"
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t ping -c "$CONNECTIONS" \
    -n "$((REDIS_REQUESTS * 16))" -P 16 --csv >"$OUT/redis-p16.csv"
REDIS_P16=$(redis_rps "$OUT/redis-p16.csv")
cleanup
REDIS_PID=

# --- pingpost ---------------------------------------------------------------------------------
# The first value of a field in a report: the run's result comes before the sweep and buyers.
json_field() { grep -o "\"$2\": *[0-9.]*" "$1" | head -n 1 | sed 's/.*: *//'; }

# shellcheck disable=SC2086 # DAEMON_ARGS is a list of words on purpose.
daemon_args() { for arg in $DAEMON_ARGS; do printf -- '--daemon-arg=%s\n' "$arg"; done; }

pingpost_run() {
    local name=$1; shift
    local extra=()
    mapfile -t extra < <(daemon_args)
    if "$LOADTEST" --spawn-daemon "$PINGPOST" --daemon-fsync "$FSYNC" "${extra[@]}" \
        --admin-id "$ADMIN_ID" --campaigns "$CAMPAIGNS" --connections "$CONNECTIONS" \
        --duration "$DURATION" --quiet --json "$OUT/$name.json" "$@" \
        >"$OUT/$name.txt" 2>"$OUT/$name.err"; then
        return 0
    fi
    say "  pingpost-loadtest failed: $(tail -n 1 "$OUT/$name.err")"
    return 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

say "pingpost-loadtest: closed loop, $CONNECTIONS connections, 1 in flight, $DURATION"
PP_P1=; PP_P16=
if pingpost_run closed-p1 --in-flight 1; then
    PP_P1=$(json_field "$OUT/closed-p1.json" throughput_per_s)
fi
say "pingpost-loadtest: closed loop, $CONNECTIONS connections, 16 in flight, $DURATION"
if pingpost_run closed-p16 --in-flight 16; then
    PP_P16=$(json_field "$OUT/closed-p16.json" throughput_per_s)
fi
say "pingpost-loadtest: open loop at $OPEN_RATE pings/s, $DURATION"
OPEN=
if pingpost_run open --in-flight 16 --rate "$OPEN_RATE"; then OPEN=yes; fi

# --- the table --------------------------------------------------------------------------------
say ""
say "same machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
printf '%-32s %14s %14s %8s\n' "PING, $CONNECTIONS connections" "Redis (req/s)" "pingpost (/s)" "ratio"
for depth in 1 16; do
    if [ "$depth" = 1 ]; then r=$REDIS_P1; p=$PP_P1; else r=$REDIS_P16; p=$PP_P16; fi
    if [ -n "$p" ]; then
        printf '%-32s %14.0f %14.0f %8s\n' "$depth in flight" "$r" "$p" "$(ratio "$p" "$r")"
    else
        printf '%-32s %14.0f %14s %8s\n' "$depth in flight" "$r" "not measured" "n/a"
    fi
done
if [ -n "$OPEN" ]; then
    say "open loop at $OPEN_RATE pings/s: achieved $(json_field "$OUT/open.json" throughput_per_s)/s," \
        "p50 $(json_field "$OUT/open.json" p50_us) us, p99 $(json_field "$OUT/open.json" p99_us) us," \
        "p99.9 $(json_field "$OUT/open.json" p999_us) us (from intended send times)"
else
    say "open loop at $OPEN_RATE pings/s: not measured"
fi
say "reports and logs: $OUT"
