#!/usr/bin/env bash
# Session-5 GPU job (behind docs/RESULTS.md, CJS): the Decima-style GNN (wfair clone + DAgger +
# REINFORCE), the LLM teacher (wfair pool + DAgger) and the Mamba student (DKO + closed-loop DAgger
# labelled by the teacher), on one GPU. Phases, each one call (≤ 10 min):
#
#   PHASE=setup  carry .whl, .devrun/cjs.tgz and the first GGUF part: wheels, data, part -> $K
#   PHASE=part   carry one more GGUF part (.devrun/smol5/part_ab ... _ae, one per call): copied to $K/parts
#   PHASE=A      GGUF joined (md5 checked); GNN in the background, teacher training in front
#   PHASE=B      teacher on the held-out seeds in the background, student distillation + held-out in front
#   PHASE=C      ablations side by side: student alone (Mamba4Net-S), random init instead of CWR
# Session 5 ran setup, part and A (twice; see docs/RESULTS.md); B and C wait for a teacher that beats Fair.
# Session 6 (teacher and student start from the shipped GNN, `--task-init`; on-policy DAgger from the start):
#   PHASE=T      teacher (SmolLM2-135M) in front, the same run on a random backbone of its shape behind
#                (ran once: two processes time-slicing one GPU; cut at 545 s in validation of round 1)
#   PHASE=T2     the teacher alone: one on-policy DAgger round without validating the start, then held-out
#   PHASE=S2     the student from it (CWR, DKO, one DAgger round labelled by the teacher), then held-out
#   PHASE=S      teacher on the held-out seeds behind; student (CWR + DKO + DAgger labelled by the teacher)
#   PHASE=X      ablations side by side: student alone, random init instead of CWR; held-out for all
#
#   K=/root/keep OUT=... PHASE=A bash experiments/cjs_pipeline.sh
set -u
K=${K:-/root/keep}
mkdir -p "$K/parts" "$K/smol" "$K/run" "$OUT"
export PYTHONPATH=$K/site:$PWD HF_HUB_OFFLINE=1 MAMBA4NET_DATA=$K/data MAMBA4NET_SMOLLM2_DIR=$K/smol PYTHONUNBUFFERED=1
W=$K/run
GGUF=$K/smol/SmolLM2-135M-Instruct.Q4_1.gguf
case "${PHASE:?}" in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl || exit 1
  mkdir -p "$K/data" && tar xzf .devrun/cjs.tgz -C "$K/data" || exit 1
  cp .devrun/smol5/part_* "$K/parts/" && ls -la "$K/parts" "$K/data" ;;
part)
  cp .devrun/smol5/part_* "$K/parts/" && ls -la "$K/parts" ;;
A)
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  timeout 530 python -m distill.cjs gnn --imitate wfair --hidden 64 --bc-episodes 8 --bc-epochs 8 --dagger-rounds 4 \
    --dagger-episodes 8 --dagger-epochs 2 --iterations "${PG_ITERS:-6}" --rollouts 8 --threads 4 --device cuda \
    --out "$W/gnn" > "$W/gnn.log" 2>&1 &
  g=$!
  timeout "${TEACHER_S:-500}" python -m distill.cjs teacher --bc-episodes 6 --bc-epochs 3 --dagger-rounds 2 \
    --dagger-episodes 8 --dagger-epochs 1 --eval-seeds 0 --out "$W/teacher_cjs" > "$W/teacher.log" 2>&1
  echo "teacher rc $?"
  wait $g; echo "gnn rc $?"
  cp "$W/teacher_cjs/adapter.safetensors" "$OUT/teacher_cjs_adapter.safetensors"
  cp "$W/gnn/model.safetensors" "$OUT/gnn_model.safetensors" ;;
B)
  python3 -m distill.cjs student --eval-only "$W/teacher_cjs" --out "$W/teacher_eval" > "$W/teacher_eval.log" 2>&1 &
  e=$!
  timeout "${STUDENT_S:-360}" python -m distill.cjs student --teacher "$W/teacher_cjs" --bc-episodes 6 --bc-epochs 3 \
    --dagger-rounds 2 --dagger-episodes 6 --dagger-epochs 1 --eval-seeds 0 --out "$W/student_cjs" > "$W/student.log" 2>&1
  echo "student rc $?"
  python3 -m distill.cjs student --eval-only "$W/student_cjs" --out "$W/student_eval" > "$W/student_eval.log" 2>&1
  wait $e; echo "teacher eval rc $?"
  cp "$W/student_cjs/model.safetensors" "$OUT/student_cjs_model.safetensors" ;;
C)
  common="--bc-episodes 6 --bc-epochs 3 --dagger-rounds 2 --dagger-episodes 6 --dagger-epochs 1 --eval-seeds 0"
  timeout 360 python -m distill.cjs student --teacher "" --init random $common --out "$W/student_alone" > "$W/alone.log" 2>&1 &
  a=$!
  timeout 360 python -m distill.cjs student --teacher "$W/teacher_cjs" --init random $common --out "$W/student_random" > "$W/random.log" 2>&1
  echo "random rc $?"
  wait $a; echo "alone rc $?"
  python3 -m distill.cjs student --eval-only "$W/student_alone" --out "$W/alone_eval" > "$W/alone_eval.log" 2>&1 &
  python3 -m distill.cjs student --eval-only "$W/student_random" --out "$W/random_eval" > "$W/random_eval.log" 2>&1
  wait ;;
T)
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  t="--role teacher --bc-episodes 0 --dagger-rounds ${ROUNDS:-3} --dagger-episodes 8 --dagger-epochs 1 --dagger-beta 0 --lr 3e-4 --eval-seeds 0"
  timeout "${TEACHER_S:-540}" python3 -m distill.cjs $t --backbone random:smollm2-135m --out "$W/teacher_random" > "$W/teacher_random.log" 2>&1 &
  r=$!
  timeout "${TEACHER_S:-540}" python3 -m distill.cjs $t --out "$W/teacher_cjs" > "$W/teacher.log" 2>&1
  echo "teacher rc $?"
  wait $r; echo "random-backbone teacher rc $?"
  cp "$W/teacher_cjs/adapter.safetensors" "$OUT/teacher_cjs_adapter.safetensors"
  cp "$W/teacher_cjs/config.json" "$OUT/teacher_cjs_config.json" ;;
T2)
  if [ ! -f "$GGUF" ]; then cat "$K"/parts/part_* > "$GGUF"; fi
  md5sum "$GGUF" | tee "$OUT/md5.txt"
  timeout "${TEACHER_S:-580}" python -m distill.cjs teacher --bc-episodes 0 --dagger-rounds 1 --dagger-episodes 8 \
    --dagger-epochs 1 --dagger-beta 0 --lr 3e-4 --validate-start false --eval-seeds 10 --out "$W/teacher_cjs" > "$W/teacher.log" 2>&1
  echo "teacher rc $?"
  cp "$W/teacher_cjs/adapter.safetensors" "$OUT/teacher_cjs_adapter.safetensors"
  cp "$W/teacher_cjs/config.json" "$OUT/teacher_cjs_config.json" ;;
S2)
  timeout "${STUDENT_S:-560}" python -m distill.cjs student --teacher "$W/teacher_cjs" --bc-episodes 0 --dagger-rounds 1 \
    --dagger-episodes 8 --dagger-epochs 1 --dagger-beta 0 --validate-start false --eval-seeds 10 --out "$W/student_cjs" > "$W/student.log" 2>&1
  echo "student rc $?"
  cp "$W/student_cjs/model.safetensors" "$OUT/student_cjs_model.safetensors"
  cp "$W/student_cjs/config.json" "$OUT/student_cjs_config.json" ;;
S)
  python3 -m distill.cjs student --eval-only "$W/teacher_cjs" --out "$W/teacher_eval" > "$W/teacher_eval.log" 2>&1 &
  e=$!
  s="--bc-episodes 0 --dagger-rounds ${ROUNDS:-3} --dagger-episodes 8 --dagger-epochs 1 --dagger-beta 0 --eval-seeds 0"
  timeout "${STUDENT_S:-420}" python -m distill.cjs student --teacher "$W/teacher_cjs" $s --out "$W/student_cjs" > "$W/student.log" 2>&1
  echo "student rc $?"
  python3 -m distill.cjs student --eval-only "$W/student_cjs" --out "$W/student_eval" > "$W/student_eval.log" 2>&1
  wait $e; echo "teacher eval rc $?"
  cp "$W/student_cjs/model.safetensors" "$OUT/student_cjs_model.safetensors"
  cp "$W/student_cjs/config.json" "$OUT/student_cjs_config.json" ;;
X)
  s="--bc-episodes 0 --dagger-rounds ${ROUNDS:-3} --dagger-episodes 8 --dagger-epochs 1 --dagger-beta 0 --eval-seeds 0"
  python3 -m distill.cjs student --eval-only "$W/teacher_random" --out "$W/teacher_random_eval" > "$W/teacher_random_eval.log" 2>&1 &
  timeout "${STUDENT_S:-400}" python -m distill.cjs student --teacher "" --init random $s --out "$W/student_alone" > "$W/alone.log" 2>&1 &
  a=$!
  timeout "${STUDENT_S:-400}" python -m distill.cjs student --teacher "$W/teacher_cjs" --init random $s --out "$W/student_random" > "$W/random.log" 2>&1
  echo "random rc $?"
  wait $a; echo "alone rc $?"
  python3 -m distill.cjs student --eval-only "$W/student_alone" --out "$W/alone_eval" > "$W/alone_eval.log" 2>&1 &
  python3 -m distill.cjs student --eval-only "$W/student_random" --out "$W/random_eval" > "$W/random_eval.log" 2>&1
  wait ;;
esac
(cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' .)
tail -n 4 "$W"/*.log 2>/dev/null
ls -la "$OUT"
