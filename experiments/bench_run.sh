#!/usr/bin/env bash
# Issue #27 on one GPU, one call (<= 600 s): the ABR student's fused step checked against PyTorch and mamba-ssm on
# the GPU, then `evaluation.bench` (every student path, both teacher shapes compiled), then the shipped ABR student
# through its fused path on fcc-test and oboe (its CPU scores: docs/RESULTS.md).
#   carry .whl and .devrun/abr.tgz (data/abr); K=/root/keep OUT=$OUT bash experiments/bench_run.sh
source "$(dirname "$0")/device_env.sh"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl
tar xzf .devrun/abr.tgz -C "$K"
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/gpu/test_fused_gpu.py tests/gpu/test_mamba_ssm_gpu.py \
  -k "abr or agree" > "$OUT/gpu_tests.log" 2>&1
tail -n 3 "$OUT/gpu_tests.log"
timeout 400 python3 -m evaluation.bench --device cuda --tasks abr --horizons 48 --teachers smollm2-135m,llama2-7b \
  --compile-teachers smollm2-135m,llama2-7b --student-paths torch,fused,fused-compiled,mamba-ssm --out "$OUT/bench" \
  > "$OUT/bench.log" 2>&1
echo "bench rc $?"
grep -i "ratios\|throughput_x" "$OUT/bench.log" | tail -n 5
[ "$SECONDS" -lt 480 ] && timeout $((580 - SECONDS)) python3 -m evaluation.compare --env abr --traces fcc-test,oboe --agents student --no-optimum \
  --no-plots --quiet --out "$OUT/abr_gpu" > "$OUT/abr_gpu.log" 2>&1
echo "compare rc $?"; tail -n 6 "$OUT/abr_gpu.log"; ls -R "$OUT"
