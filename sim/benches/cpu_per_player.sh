#!/usr/bin/env bash
# CPU per matched player, per process: release `fakes`, `matchmaker` (in-memory store) and
# `sim` as three processes on loopback; an open model of 1v1 solo players, each with a fresh
# PKCE login, lobby WebSocket, match request and `found`.
#
#   sim/benches/cpu_per_player.sh [RATE] [SECONDS] [BIN_DIR]
#     RATE     arrivals per second (default 400)
#     SECONDS  arrival window (default 30); the drain that follows is bounded by the scenario
#     BIN_DIR  where the release binaries are (default: build them into target/release)
#
# SIM_WORKERS=N (read by `sim run` itself) fixes sim's worker processes; by default the
# open-files budget decides (2 at 400/s with a 40 s request timeout).
#
# Prints user+system CPU seconds of each process over the whole run (from /proc/<pid>/stat,
# read just before each is stopped) divided by the players matched, in milliseconds. To compare
# two builds (say, two allocators), build each into its own BIN_DIR and run them one after the
# other, or alternately several times: the machine's noise is larger than small differences.
set -euo pipefail
cd "$(dirname "$0")/../.."
rate="${1:-400}"
seconds="${2:-30}"
bin="${3:-}"
if [ -z "$bin" ]; then
  cargo build --release -q -p fakes -p matchmaker -p sim
  bin="${CARGO_TARGET_DIR:-target}/release"
fi
out="$(mktemp -d)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fakes_port=$(port)
mm_port=$(port)

cat > "$out/fleet.toml" <<EOF
[[regions]]
name = "us-east-1"
servers = 40000
EOF
cat > "$out/scenario.toml" <<EOF
version = 1
name = "cpu-per-player"
[run]
duration = "${seconds}s"
seed = 3
drain = "30s"
workers = 4
[target]
kind = "embedded"
[target.fleet]
regions = [{ name = "us-east-1", servers = 40000 }]
[population]
arrival = { kind = "constant", rate = $rate }
[population.behaviour]
login = "pkce"
request_timeout = "40s"
EOF

cpu_ms() { awk '{print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }

RUST_LOG=warn "$bin/fakes" serve --addr "127.0.0.1:$fakes_port" --fleet "$out/fleet.toml" \
  > "$out/fakes.log" 2>&1 &
fakes_pid=$!
trap 'kill "$fakes_pid" "${mm_pid:-}" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$fakes_port/iam/v3/oauth/jwks" > /dev/null && break
  sleep 0.1
done
RUST_LOG=warn AB_BASE_URL="http://127.0.0.1:$fakes_port" AB_CLIENT_ID=matchbench-game \
  AB_CLIENT_SECRET=matchbench-game-secret AB_NAMESPACE=matchbench \
  "$bin/matchmaker" serve --addr "127.0.0.1:$mm_port" > "$out/matchmaker.log" 2>&1 &
mm_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$mm_port/readyz" > /dev/null && break
  sleep 0.1
done
fakes_before=$(cpu_ms "$fakes_pid")
mm_before=$(cpu_ms "$mm_pid")

# sim may run its players in worker processes (the open-files budget decides): GNU time counts
# the CPU of the process and of every child it waited for.
/usr/bin/time -f "%U %S" -o "$out/sim.time" \
  "$bin/sim" run --headless "$out/scenario.toml" --fakes-url "http://127.0.0.1:$fakes_port" \
  --matchmaker-url "http://127.0.0.1:$mm_port/matchmaking" --report "$out/report.json" \
  > "$out/sim.log" 2>&1 || true
sim_cpu=$(awk '{print ($1 + $2) * 1000}' "$out/sim.time")
fakes_cpu=$(echo "$(cpu_ms "$fakes_pid") - $fakes_before" | bc)
mm_cpu=$(echo "$(cpu_ms "$mm_pid") - $mm_before" | bc)
matched=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["outcomes"]["matched"])' "$out/report.json")
echo "rate $rate/s for ${seconds}s: matched $matched players (bins: $bin)"
python3 - "$matched" "$sim_cpu" "$fakes_cpu" "$mm_cpu" <<'EOF'
import sys
m = int(sys.argv[1]) or 1
sim, fakes, mm = (float(x) for x in sys.argv[2:5])
print(f"| process | CPU ms | ms per matched player |")
print(f"|---|---|---|")
for name, v in (("sim", sim), ("fakes", fakes), ("matchmaker", mm), ("total", sim + fakes + mm)):
    print(f"| {name} | {v:.0f} | {v / m:.3f} |")
EOF
