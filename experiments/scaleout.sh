#!/usr/bin/env bash
# Multi-GPU DDP runs (1 vs 2 processes, same global batch) and the SB3 PPO Pensieve baseline, on one
# 2-GPU host, behind docs/RESULTS.md.   OUT=... POOL=... bash experiments/scaleout.sh
# Knobs: SSTEPS / TSTEPS (student / teacher steps), PPO_STEPS, PPO_ENVS, NPROC (GPUs), DEVICE (cuda|cpu).
set -u
mkdir -p "$OUT"
SSTEPS=${SSTEPS:-600}; TSTEPS=${TSTEPS:-200}; PPO_STEPS=${PPO_STEPS:-1000000}; PPO_ENVS=${PPO_ENVS:-24}
NPROC=${NPROC:-2}; DEVICE=${DEVICE:-cuda}; STUDENT_ARGS=${STUDENT_ARGS:-}; TEACHER_ARGS=${TEACHER_ARGS:-}
W=${WORK:-/tmp/scaleout}; mkdir -p "$W"
# PPO on the CPUs, in the background, while the GPUs run DDP
OMP_NUM_THREADS=4 python -m distill.abr ppo --algo ppo --timesteps "$PPO_STEPS" --n-envs "$PPO_ENVS" \
  --vec subproc --out "$W/ppo_abr" > "$W/ppo.log" 2>&1 &
ppo=$!
s="--pool $POOL --policies robustmpc --teacher '' --init random --condition none --steps $SSTEPS --batch-size 32 --log-every 10 --eval-traces '' --device $DEVICE $STUDENT_ARGS"
t="--pool $POOL --policies robustmpc --backbone shape:smollm2-135m --lora-rank 32 --condition none --steps $TSTEPS --batch-size 64 --log-every 10 --eval-traces '' --device $DEVICE $TEACHER_ARGS"
for n in 1 "$NPROC"; do
  launch="python3 -m torch.distributed.run --standalone --nproc_per_node=$n"
  eval "OMP_NUM_THREADS=4 $launch -m distill.abr_student $s --out $W/student_p$n" > "$W/student_p$n.log" 2>&1
  eval "OMP_NUM_THREADS=4 $launch -m distill.abr_teacher $t --out $W/teacher_p$n" > "$W/teacher_p$n.log" 2>&1
done
wait $ppo
tail -n 3 "$W"/*.log
(cd "$W" && tar czf "$OUT/scaleout.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' .)
[ -f "$W/ppo_abr/policy.safetensors" ] && mkdir -p "$OUT/ppo_abr" && cp "$W/ppo_abr/"* "$OUT/ppo_abr/"
ls -la "$OUT"
