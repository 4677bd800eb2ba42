#!/usr/bin/env bash
# Session-9 GPU job (behind docs/RESULTS.md): the CJS student's backbone in fused Triton kernels
# (agents.student_kernels.FusedSequence). No GGUF: the timed teacher has SmolLM2-135M's shape and random
# weights, as in evaluation.bench. Phases, each one call (≤ 10 min; $K kept between calls while warm):
#
#   (every phase on a fresh machine: carry .whl and .devrun/s7.tgz, installed and unpacked first)
#   PHASE=check     fused vs PyTorch on the GPU (check_fused_cjs.py), then the plain (CUDA graph, not
#                   compiled) timings of every path (session 9's check call also gave the held-out run a
#                   240 s slot, too short: that run is PHASE=eval now)
#   PHASE=compiled  the compiled timings (student one-chunk and fused, teacher, GNN), as many as fit
#   PHASE=tiles     the fused student at four projection tiles (plain), two of them compiled, the teacher again
#   PHASE=eval      the shipped student on the held-out seeds with its fused backbone (needs ~5 min)
#
#   K=/root/keep OUT=... PHASE=check bash scripts/device/cjs_fused.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, the environment, fresh_machine
B=scripts/device/cjs_decision_bench.py
fresh_machine || exit 1
case "${PHASE:?}" in
check)
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  timeout 120 python3 scripts/device/check_fused_cjs.py "$OUT/check_fused_cjs.json" > "$OUT/check.log" 2>&1
  echo "check rc $?"; tail -3 "$OUT/check.log"
  timeout 150 python3 $B "$OUT/timings.json" plain student-chunked,student,student-fused,teacher,gnn ;;
compiled)
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  timeout "${COMPILE_S:-560}" python3 $B "$OUT/timings.json" compiled "${MODELS:-student-fused,teacher,student,gnn}" ;;
tiles)  # the fused student's projection tiles (rows x outputs), plain and compiled, and the teacher compiled again
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  timeout 120 python3 $B "$OUT/timings.json" plain student-fused,student-fused-16x32,student-fused-32x32,student-fused-16x64
  timeout 300 python3 $B "$OUT/timings.json" compiled student-fused,student-fused-16x32,teacher ;;
eval)  # the shipped student on the held-out seeds, its backbone fused (distill.cjs --eval-only: for_inference)
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  timeout "${HELDOUT_S:-540}" python3 -m distill.cjs --eval-only agents/pretrained/student_cjs \
    --out "$W/student_fused" > "$OUT/student_fused.log" 2>&1
  echo "eval rc $?"
  cp "$W/student_fused/metrics.json" "$OUT/student_fused_heldout.json" 2>/dev/null \
    || cp "$W/student_fused/partial.json" "$OUT/student_fused_partial.json" ;;
esac
