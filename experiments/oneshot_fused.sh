#!/usr/bin/env bash
# Session-12 GPU job (behind docs/RESULTS.md): the students' one-shot forwards with the backbone in fused
# Triton kernels (agents.hybrid.kernels.FusedSequence) — VP's prediction (VPStudent.fuse, new) and where a
# CJS decision's time goes. No GGUF and no data: the timed teachers have SmolLM2-135M's shape and random
# weights, as in evaluation.bench. Carry .whl (gymnasium, cloudpickle, farama-notifications).
#
#   PHASE=check  fused vs PyTorch on the GPU: the GPU tests (python -m pytest -m gpu tests/gpu)
#   PHASE=vp     python -m evaluation.bench --tasks vp: student plain / compiled / fused / fused + compiled,
#                teacher plain / compiled, batches 1, 16, 256
#   PHASE=cjsfast  cjs_decision_bench.py: the fused student plain and compiled, the teacher compiled
#   PHASE=cjs    python -m evaluation.bench --tasks cjs (student, teacher, GNN; every path)
#
#   K=/root/keep OUT=... PHASE=vp,parts bash experiments/oneshot_fused.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, the environment, install_wheels
install_wheels || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
for phase in ${PHASE//,/ }; do
  case "$phase" in
  check) timeout "${CHECK_S:-240}" python3 -m pytest -q -m gpu tests/gpu > "$OUT/check.log" 2>&1
        echo "check rc $?"; tail -3 "$OUT/check.log" ;;
  vp) timeout "${VP_S:-420}" python3 -m evaluation.bench --device cuda --tasks vp --teachers smollm2-135m \
        --out "$OUT/vp" > "$OUT/vp.log" 2>&1; echo "vp rc $?"; grep -E "^vp (student|teacher)|ratios" "$OUT/vp.log" ;;
  cjsfast) B=experiments/cjs_decision_bench.py  # the fused student and the teacher only (fewer compiles)
        timeout 60 python3 $B "$OUT/cjs_timings.json" plain student-fused; echo "plain rc $?"
        timeout "${CJS_S:-420}" python3 $B "$OUT/cjs_timings.json" compiled student-fused,teacher; echo "compiled rc $?" ;;
  cjs) timeout "${CJS_S:-540}" python3 -m evaluation.bench --device cuda --tasks cjs --teachers smollm2-135m \
        --out "$OUT/cjs" > "$OUT/cjs.log" 2>&1; echo "cjs rc $?"; grep -E "^cjs |ratios" "$OUT/cjs.log" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
