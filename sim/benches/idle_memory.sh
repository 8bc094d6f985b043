#!/usr/bin/env bash
# Memory per connected idle virtual player in a sim process.
#
#   sim/benches/idle_memory.sh [SMALL] [LARGE]      (defaults: 1000 and 3000 players)
#
# One `sim stack` process serves fakes + the matchmaker; one `sim run --shard 0/1` process holds the
# players: closed model, 1v1, ramp over 45 s, 120 s matches, so 80 s in every player is logged in,
# holds its lobby socket and sits in a match. The RSS of the player process is read then, for a
# small and a large population; the difference over the extra players is the cost of one idle
# player (the fixed part — runtime, pools, histograms — cancels out). Bounded, loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
small="${1:-1000}"
large="${2:-3000}"
cargo build --release -q -p sim
sim="${CARGO_TARGET_DIR:-target}/release/sim"

measure() {
  local players=$1 out
  out="$(mktemp -d)"
  cat > "$out/s.toml" <<TOML
version = 1
name = "idle-memory"
[run]
duration = "110s"
seed = 7
drain = "5s"
workers = 2
progress_every = "10s"
[target]
kind = "embedded"
[target.fleet]
regions = [{ name = "us-east-1", servers = 20000 }]
[target.matchmaker]
modes = [{ name = "1v1", teams = 2, team_size = 1 }]
[population]
arrival = { kind = "closed", players = $players, ramp_up = "45s", think = "5s" }
modes = [{ name = "1v1" }]
[population.behaviour]
login = "pkce"
request_timeout = "40s"
match_length = "120s"
TOML
  "$sim" stack "$out/s.toml" > "$out/stack.log" 2>&1 &
  local stack=$!
  for _ in $(seq 1 100); do grep -q '^matchmaker' "$out/stack.log" && break; sleep 0.2; done
  local f m
  f=$(awk '/^fakes/ {print $2}' "$out/stack.log")
  m=$(awk '/^matchmaker/ {print $2}' "$out/stack.log")
  "$sim" run --headless "$out/s.toml" --shard 0/1 --fakes-url "$f" --matchmaker-url "$m" \
    --report "$out/r.json" > "$out/run.log" 2>&1 &
  local run=$!
  sleep 80
  grep -E 'sockets' "$out/run.log" | tail -1 >&2
  awk '/VmRSS/ {print $2}' "/proc/$run/status"
  kill "$run" "$stack" 2>/dev/null || true
  wait 2>/dev/null || true
}

rss_small=$(measure "$small")
rss_large=$(measure "$large")
echo "players $small: ${rss_small} KiB RSS; players $large: ${rss_large} KiB RSS"
echo "per idle player: $(( (rss_large - rss_small) * 1024 / (large - small) )) bytes"
