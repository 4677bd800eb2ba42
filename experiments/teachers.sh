#!/usr/bin/env bash
# Session-4 GPU job (behind docs/RESULTS.md): two ABR teachers on stronger pools (PPO's episodes; the
# best of PPO and RobustMPC per trace and start) and the VP teacher + students with a cosine schedule,
# side by side on one GPU; then the ABR teachers re-evaluated as they ship (reloaded from bf16).
#
#   K=/root/keep OUT=... bash experiments/teachers.sh
# K holds: site/ (wheels), smol/ (the GGUF), data/{abr,vp}, pools2/{ppo,best2}.
set -u
K=${K:-/root/keep}
export PYTHONPATH=$K/site:$PWD HF_HUB_OFFLINE=1 MAMBA4NET_DATA=$K/data MAMBA4NET_SMOLLM2_DIR=$K/smol
W=$K/run
mkdir -p "$W" "$OUT"
common="--lora-rank 32 --condition none --steps ${TSTEPS:-1200} --batch-size 64 --eval-traces fcc-valid,fcc-test --save-every 100000"
python -m distill.abr teacher --pool "$K/pools2/ppo" --out "$W/t_ppo" $common > "$W/t_ppo.log" 2>&1 &
p1=$!
python -m distill.abr teacher --pool "$K/pools2/best2" --out "$W/t_best2" $common > "$W/t_best2.log" 2>&1 &
p2=$!
python3 experiments/vp_pipeline.py "${VP_TEPOCHS:-10}" "${VP_SEPOCHS:-15}" cosine "${VP_TLR:-2e-4}" > "$W/vp.log" 2>&1 &
p3=$!
wait $p1 $p2
python3 experiments/reload_eval.py "$W/reload.json" "$W/t_ppo" "$W/t_best2" > "$W/reload.log" 2>&1
wait $p3
for t in t_ppo t_best2; do
  [ -f "$W/$t/adapter.safetensors" ] && cp "$W/$t/adapter.safetensors" "$OUT/${t}_adapter.safetensors"
done
[ -f "$W/teacher_vp/adapter.safetensors" ] && cp "$W/teacher_vp/adapter.safetensors" "$OUT/teacher_vp_adapter.safetensors"
[ -f "$W/student_vp/model.safetensors" ] && cp "$W/student_vp/model.safetensors" "$OUT/student_vp_model.safetensors"
(cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' .)
ls -la "$OUT"
tail -3 "$W"/*.log
