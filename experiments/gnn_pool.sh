#!/usr/bin/env bash
# Session-7 GPU job (behind docs/RESULTS.md): teachers adapted from an RL policy's experience, as NetLLM's
# were (NetLLM's CJS pool came from Decima, its ABR pool from an RL policy), with closed-loop DAgger labelled
# by that policy; then the CJS Mamba students and their ablations. Phases, each one call (≤ 10 min):
#
#   PHASE=setup  carry .whl, .devrun/s7.tgz (data/{abr,cjs}, pools/ppo) and .devrun/smol5/part_aa -> $K
#   PHASE=part   carry one more GGUF part (part_ab ... part_ae, one per call): copied to $K/parts
#   PHASE=P1     GGUF joined (md5 checked); side by side:
#                - CJS teacher (SmolLM2-135M + LoRA 32) started as the shipped Decima GNN (frozen, --anchor-lr 0),
#                  the backbone trained on the GNN's own decisions (--pool gnn), and the same on a random backbone
#                  of its shape (the NetLLM ablation); each then on the held-out seeds (2 processes × 5 seeds)
#                - the CJS student alone (Mamba4Net-S: the same pool, no teacher, no DAgger) + held-out
#                - the ABR teacher on PPO's pool with 2 DAgger rounds labelled by PPO, then reloaded from bf16
#   PHASE=P2     the CJS students from the P1 teacher, side by side, each then on the held-out seeds:
#                CWR + DKO + one DAgger round labelled by the teacher; random init; offline only (no DAgger)
#   PHASE=P3     (a fresh machine: setup and parts again) the P1 teacher carried back in (TEACHER=folder) on the
#                held-out seeds, and the random-backbone teacher trained again as in P1, then held-out
# Session 7 ran P1 (its held-out runs were cut at 240-250 s, sharing the GPU with the other runs), P2 without
# the held-out runs (the students were evaluated on the project CPU instead), then P3 (cut at 470 s). What the
# cuts suggest (not profiled): an LLM teacher's held-out run is GPU-bound (SmolLM2 over 65 tokens at each of
# 34-46 k decisions per 200-job workload), so splitting its seeds over processes multiplies the GPU work; give
# it one process with all 10 seeds (`distill.cjs --eval-only DIR`) and the GPU to itself, about ten minutes.
#
#   K=/root/keep OUT=... PHASE=P1 bash experiments/gnn_pool.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, $GGUF, the environment, heldout()
# Every command has its own time limit, so the call ends (and returns its files) before the 600 s cut.

case "${PHASE:?}" in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl || exit 1
  tar xzf .devrun/s7.tgz -C "$K" || exit 1
  cp .devrun/smol5/part_* "$K/parts/" && ls -la "$K/parts" "$K/data" "$K/pools" ;;
part)
  cp .devrun/smol5/part_* "$K/parts/" && ls -la "$K/parts" ;;
P1)
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  # ABR: evaluated only as it ships (reloaded from the bf16 adapter), on fcc-valid (picks) and fcc-test
  (timeout 430 python -m distill.abr teacher --pool "$K/pools/ppo" --lora-rank 32 --condition none --steps 1200 \
     --batch-size 64 --dagger-rounds 2 --dagger-labeler ppo --dagger-traces fcc-train --eval-traces "" \
     --save-every 100000 --out "$W/abr_teacher" > "$W/abr_teacher.log" 2>&1 \
   && timeout 130 python3 experiments/reload_eval.py "$W/abr_reload.json" "$W/abr_teacher" > "$W/abr_reload.log" 2>&1) &
  s="--pool gnn --bc-episodes 6 --bc-epochs 2 --dagger-rounds 0 --validate-start false --eval-seeds 0"
  (timeout 300 python -m distill.cjs student --teacher '' --init random $s --out "$W/student_alone" \
     > "$W/student_alone.log" 2>&1; heldout student_alone 240) &
  t="--role teacher $s --anchor-lr 0"
  (timeout 300 python3 -m distill.cjs $t --backbone random:smollm2-135m --out "$W/teacher_random" \
     > "$W/teacher_random.log" 2>&1; heldout teacher_random 250) &
  timeout 300 python3 -m distill.cjs $t --out "$W/teacher_cjs" > "$W/teacher_cjs.log" 2>&1
  echo "teacher rc $?"
  heldout teacher_cjs 250
  wait
  for f in teacher_cjs/adapter.safetensors teacher_cjs/config.json abr_teacher/adapter.safetensors \
           abr_teacher/config.json student_alone/model.safetensors student_alone/config.json; do
    [ -f "$W/$f" ] && cp "$W/$f" "$OUT/${f/\//_}"
  done ;;
P2)
  s="--teacher $W/teacher_cjs --pool gnn --bc-episodes 6 --bc-epochs 2 --dagger-episodes 8 --dagger-epochs 1 --dagger-beta 0"
  s="$s --validate-start false --val-seeds 2 --val-jobs 50 --eval-seeds 0"
  for run in "student_cjs --init cwr --dagger-rounds 1" "student_random --init random --dagger-rounds 1" \
             "student_offline --init cwr --dagger-rounds 0"; do
    set -- $run
    name=$1; shift
    (timeout 390 python -m distill.cjs student $s "$@" --out "$W/$name" > "$W/$name.log" 2>&1
     heldout "$name" 180) &
  done
  wait
  for n in student_cjs student_random student_offline; do
    for f in model.safetensors config.json; do [ -f "$W/$n/$f" ] && cp "$W/$n/$f" "$OUT/${n}_$f"; done
  done ;;
P3)
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  rm -rf "$W/teacher_cjs" && cp -r "${TEACHER:?}" "$W/teacher_cjs"
  t="--role teacher --pool gnn --bc-episodes 6 --bc-epochs 2 --dagger-rounds 0 --validate-start false --eval-seeds 0"
  (timeout 150 python3 -m distill.cjs $t --anchor-lr 0 --backbone random:smollm2-135m --out "$W/teacher_random" \
     > "$W/teacher_random.log" 2>&1; heldout teacher_random 320) &
  heldout teacher_cjs 470
  wait
  for n in teacher_cjs teacher_random; do
    [ -f "$W/${n}_eval/metrics.json" ] && cp "$W/${n}_eval/metrics.json" "$OUT/${n}_heldout.json"
  done ;;
esac
(cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' .)
tail -n 3 "$W"/*.log 2>/dev/null
ls -la "$OUT"
