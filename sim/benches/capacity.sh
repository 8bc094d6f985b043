#!/usr/bin/env bash
# Capacity benchmark: the most concurrent virtual players (each holding a lobby WebSocket and a
# pending match request) the embedded stack sustains on this machine.
#
#   sim/benches/capacity.sh [PLAYERS] [SHARDS]      (defaults: 12000 players, 2 shards)
#
# One `sim stack` process serves fakes + the matchmaker (in-memory store); SHARDS `sim run --shard`
# processes hold the players (one process may open only so many sockets), then `sim merge`
# combines their reports exactly and checks thresholds and invariants. Bounded: the scenario's
# duration and drain, all on loopback. Exit code is the merge's (0 pass, 1 breach).
set -euo pipefail
cd "$(dirname "$0")/../.."
players="${1:-12000}"
shards="${2:-2}"
out="$(mktemp -d)"
scenario="$out/capacity.toml"
sed "s/players = [0-9]*/players = $players/" scenarios/capacity.toml > "$scenario"

cargo build --release -q -p sim
sim=target/release/sim
"$sim" stack "$scenario" > "$out/stack.log" 2>&1 &
stack_pid=$!
trap 'kill "$stack_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^matchmaker' "$out/stack.log" && break
  sleep 0.2
done
fakes_url=$(awk '/^fakes/ {print $2}' "$out/stack.log")
matchmaker_url=$(awk '/^matchmaker/ {print $2}' "$out/stack.log")
[ -n "$fakes_url" ] && [ -n "$matchmaker_url" ] || { cat "$out/stack.log"; exit 2; }

pids=()
for i in $(seq 0 $((shards - 1))); do
  "$sim" run --headless "$scenario" --shard "$i/$shards" \
    --fakes-url "$fakes_url" --matchmaker-url "$matchmaker_url" \
    --report "$out/shard-$i.json" > "$out/shard-$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
echo "players $players, shards $shards, stack peak RSS $(grep VmHWM /proc/$stack_pid/status 2>/dev/null | awk '{print $2" "$3}')"
"$sim" merge "$out"/shard-*.json
