#!/usr/bin/env bash
# Session-12 GPU job (behind docs/RESULTS.md): the students' one-shot forwards with the backbone in fused
# Triton kernels (agents.student_kernels.FusedSequence) — VP's prediction (VPStudent.fuse, new) and where a
# CJS decision's time goes. No GGUF and no data: the timed teachers have SmolLM2-135M's shape and random
# weights, as in evaluation.bench. Carry .whl (gymnasium, cloudpickle, farama-notifications).
#
#   PHASE=check  fused vs PyTorch on the GPU: check_fused_cjs.py, and check_fused_vp.py on the test windows
#                (.devrun/vp_test.npz: carry .devrun)
#   PHASE=vp     python -m evaluation.bench --tasks vp: student plain / compiled / fused / fused + compiled,
#                teacher plain / compiled, batches 1, 16, 256
#   PHASE=parts  scripts/device/cjs_parts_bench.py: the CJS student's parts timed apart, and a kernel table
#   PHASE=tiles  scripts/device/fused_tiles.py: the fused backbone's launch settings and activation dtype
#   PHASE=cjsfast  cjs_decision_bench.py: the fused student plain and compiled, the teacher compiled
#   PHASE=cjs    python -m evaluation.bench --tasks cjs (student, teacher, GNN; every path)
#
#   K=/root/keep OUT=... PHASE=vp,parts bash scripts/device/oneshot_fused.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, the environment, install_wheels
install_wheels || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
for phase in ${PHASE//,/ }; do
  case "$phase" in
  check) timeout "${CHECK_S:-120}" python3 scripts/device/check_fused_cjs.py "$OUT/check_fused_cjs.json" > "$OUT/check.log" 2>&1
        echo "check cjs rc $?"; grep -c "stage_agreement" "$OUT/check.log"
        timeout "${CHECK_S:-120}" python3 scripts/device/check_fused_vp.py .devrun/vp_test.npz "$OUT/check_fused_vp.json" >> "$OUT/check.log" 2>&1
        echo "check vp rc $?"; cat "$OUT/check_fused_vp.json" ;;
  vp) timeout "${VP_S:-420}" python3 -m evaluation.bench --device cuda --tasks vp --teachers smollm2-135m \
        --out "$OUT/vp" > "$OUT/vp.log" 2>&1; echo "vp rc $?"; grep -E "^vp (student|teacher)|ratios" "$OUT/vp.log" ;;
  parts) timeout "${PARTS_S:-240}" python3 scripts/device/cjs_parts_bench.py "$OUT/parts" 1,16,256 "${MODES:-both}" \
        > "$OUT/parts.log" 2>&1; echo "parts rc $?"; head -40 "$OUT/parts.log" ;;
  tiles) timeout "${TILES_S:-400}" python3 scripts/device/fused_tiles.py "$OUT/tiles.json" 1,16,256 \
        > "$OUT/tiles.log" 2>&1; echo "tiles rc $?"; tail -90 "$OUT/tiles.log" ;;
  cjsfast) B=scripts/device/cjs_decision_bench.py  # the fused student and the teacher only (fewer compiles)
        timeout 60 python3 $B "$OUT/cjs_timings.json" plain student-fused; echo "plain rc $?"
        timeout "${CJS_S:-420}" python3 $B "$OUT/cjs_timings.json" compiled student-fused,teacher; echo "compiled rc $?" ;;
  cjs) timeout "${CJS_S:-540}" python3 -m evaluation.bench --device cuda --tasks cjs --teachers smollm2-135m \
        --out "$OUT/cjs" > "$OUT/cjs.log" 2>&1; echo "cjs rc $?"; grep -E "^cjs |ratios" "$OUT/cjs.log" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
