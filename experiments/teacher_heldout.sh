#!/usr/bin/env bash
# Session-8 GPU job (behind docs/RESULTS.md): the CJS teacher of session 7 on the held-out seeds, and the
# NetLLM ablation (the same pipeline on a random backbone of SmolLM2's shape) trained and scored the same way.
# Phases, each one call (≤ 10 min); the machine keeps $K between calls while warm (30 s):
#
#   PHASE=setup    carry .whl, .devrun/s7.tgz (data/cjs) and .devrun/smol2/part_aa (the GGUF in 2 halves)
#   PHASE=teacher  carry .devrun/smol2/part_ab and .devrun/s8 (teacher_cjs: adapter + config); GGUF joined
#                  (md5 checked), then the teacher on seeds 1000-1009 (200 jobs): 2 processes of 5 seeds,
#                  LoRA merged into bf16 weights (distill.cjs --merge-lora, the default), merged into one result
#   PHASE=validation  (after setup; carry .devrun/smol2/part_ab) the shipped teacher on the validation seeds
#                  3000-3009 as above (session 11)
#   PHASE=random   the random-backbone teacher trained as session 7's (GNN pool, 6 x 50 jobs, 2 epochs,
#                  GNN parts frozen), then held out as above
#   PHASE=same    (a fresh machine, no GGUF) the session-7 CJS students (carried: .devrun/s7ckpt/student_*) and
#                 the shipped Decima GNN on the same seeds on the same GPU, one process of 10 seeds each, all five
#                 at once, so that student, teacher and GNN are compared on one device
#
# To fit 64 MiB per call with a 49 MB half of the GGUF, the big shipped ABR/VP/student checkpoints were moved
# out of the working tree for these calls (they are not used here) and put back afterwards.
#
#   K=/root/keep OUT=... PHASE=teacher bash experiments/teacher_heldout.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, $GGUF, the environment, heldout()

heldout_out() {  # NAME SECONDS: heldout, then its merged metrics and the per-workload partials into $OUT
  heldout "$@"
  cp "$W/$1_eval/metrics.json" "$OUT/$1_heldout.json" 2>/dev/null
  cat "$W/$1_e0/partial.json" "$W/$1_e1/partial.json" > "$OUT/$1_partial.txt" 2>/dev/null
}

case "${PHASE:?}" in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl || exit 1
  tar xzf .devrun/s7.tgz -C "$K" data/cjs || exit 1
  cp .devrun/smol2/part_aa "$K/parts/" && ls -la "$K/parts" "$K/data" ;;
teacher)
  cp .devrun/smol2/part_ab "$K/parts/"
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  rm -rf "$W/teacher_cjs" && cp -r .devrun/s8/teacher_cjs "$W/teacher_cjs"
  heldout_out teacher_cjs 560 ;;
validation)  # session 11: the shipped teacher on the validation seeds 3000-3009 (the students' pick rule)
  cp .devrun/smol2/part_ab "$K/parts/"
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  rm -rf "$W/teacher_val" && cp -r agents/pretrained/teacher_cjs "$W/teacher_val"
  heldout teacher_val "${HELDOUT_S:-540}" 3000
  cp "$W/teacher_val_eval/metrics.json" "$OUT/teacher_val.json" 2>/dev/null
  cat "$W/teacher_val_e0/partial.json" "$W/teacher_val_e1/partial.json" > "$OUT/teacher_val_partial.txt" 2>/dev/null ;;
random)
  t="--role teacher --pool gnn --bc-episodes 6 --bc-epochs 2 --dagger-rounds 0 --validate-start false --eval-seeds 0"
  timeout 170 python3 -m distill.cjs $t --anchor-lr 0 --backbone random:smollm2-135m --out "$W/teacher_random" \
    > "$W/teacher_random.log" 2>&1
  echo "train rc $?"
  heldout_out teacher_random "${HELDOUT_S:-400}"
  for f in adapter.safetensors config.json; do cp "$W/teacher_random/$f" "$OUT/teacher_random_$f"; done ;;
same)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl || exit 1
  tar xzf .devrun/s7.tgz -C "$K" data/cjs || exit 1
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  for n in student_cjs student_offline student_random student_alone cjs_gnn; do
    src=.devrun/s7ckpt/$n; [ "$n" = cjs_gnn ] && src=agents/pretrained/cjs_gnn
    timeout "${HELDOUT_S:-520}" python3 -m distill.cjs student --eval-only "$src" --out "$W/${n}_gpu" > "$W/${n}_gpu.log" 2>&1 &
  done
  wait
  for n in student_cjs student_offline student_random student_alone cjs_gnn; do
    cp "$W/${n}_gpu/metrics.json" "$OUT/${n}_gpu.json" 2>/dev/null || cp "$W/${n}_gpu/partial.json" "$OUT/${n}_partial.json"
  done ;;
esac
(cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' .)
tail -n 4 "$W"/*.log 2>/dev/null
ls -la "$OUT"
