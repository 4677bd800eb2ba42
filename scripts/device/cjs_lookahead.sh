#!/usr/bin/env bash
# Session-10 GPU-host job (behind docs/RESULTS.md): experience pools labelled by the clairvoyant lookahead
# expert over wfair (agents.cjs_lookahead), and the CJS student distilled on them. Carry .whl and
# .devrun/s7.tgz (TPC-H data); no GGUF (the student's teacher is the shipped one, loaded from the repo).
#
#   PHASE=pool   SEEDS=10006-10021  label one 50-job workload per CPU core (16 on the H100/H200 host);
#                                   the pool file is rewritten as each workload ends, so a cut run keeps them
#   PHASE=distil POOL=... ARGS=...  python -m distill.cjs --role student on the carried pools, then the
#                                   held-out seeds in two processes (cjs_common.sh heldout)
#
#   K=/root/keep OUT=... PHASE=pool bash scripts/device/cjs_lookahead.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, the environment
if [ ! -d "$K/data/cjs" ]; then  # a fresh machine: the wheels and the TPC-H data
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl || exit 1
  tar xzf .devrun/s7.tgz -C "$K" data/cjs || exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt"; nproc >> "$OUT/gpu.txt"
case "${PHASE:?}" in
pool)
  OMP_NUM_THREADS=1 timeout "${POOL_S:-560}" python3 -m agents.cjs_lookahead --seeds "${SEEDS:?}" --jobs 50 \
    --procs "${PROCS:-$(nproc)}" --out "$OUT/lookahead_${SEEDS}.json" > "$OUT/pool.log" 2>&1
  echo "pool rc $?"; tail -3 "$OUT/pool.log" ;;
distil)
  timeout "${TRAIN_S:-300}" python3 -m distill.cjs --role student --pool-file "${POOL:?}" --out "$W/student" ${ARGS:-} \
    > "$OUT/distil.log" 2>&1
  echo "distil rc $?"; tail -5 "$OUT/distil.log"
  heldout student "${HELDOUT_S:-240}"
  cp "$W/student_eval/metrics.json" "$OUT/heldout.json" 2>/dev/null; tail -2 "$W"/student_e*.log
  for f in "$W"/student/*; do cp "$f" "$OUT/" ; done ;;
esac
