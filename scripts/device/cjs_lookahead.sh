#!/usr/bin/env bash
# Session-10 GPU-host job (behind docs/RESULTS.md): experience pools labelled by the clairvoyant lookahead
# expert over wfair (agents.cjs_lookahead). Carry .whl and
# .devrun/s7.tgz (TPC-H data).
#
#   PHASE=pool   SEEDS=10006-10021  label one 50-job workload per CPU core the call can use; the pool file
#                                   is rewritten as each workload ends, so a cut run keeps them
#
# Measured (H200 host, 2026-11-28): a call sees 2 cores (nproc), not the host's 16, and one 50-job workload
# took 485 s there (184-572 s on the project CPU): one call labelled 1 workload (seed 10006). Label pools
# on the project CPU instead; GPU time is for the models.
#
#   K=/root/keep OUT=... PHASE=pool bash scripts/device/cjs_lookahead.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, the environment, fresh_machine
fresh_machine || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt"; nproc >> "$OUT/gpu.txt"
case "${PHASE:?}" in
pool)
  OMP_NUM_THREADS=1 timeout "${POOL_S:-560}" python3 -m agents.cjs_lookahead --seeds "${SEEDS:?}" --jobs 50 \
    --procs "${PROCS:-$(nproc)}" --out "$OUT/lookahead_${SEEDS}.json" > "$OUT/pool.log" 2>&1
  echo "pool rc $?"; tail -3 "$OUT/pool.log" ;;
esac
