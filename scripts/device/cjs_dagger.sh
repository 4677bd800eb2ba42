#!/usr/bin/env bash
# Session-11 GPU-host job (behind docs/RESULTS.md): a closed-loop round for the CJS student with the
# clairvoyant lookahead expert as labeler. The DAgger pool is labelled on the project CPU first (the
# shipped student schedules, the expert labels the states it reaches):
#
#   python -m agents.cjs_lookahead --seeds 12000-12019 --jobs 50 --no-wait --procs 2 \
#       --policy agents/pretrained/student_cjs_v1 --out .devrun/pools11/dg_12000.json
#
# (session 11 used its first 9 workloads, 12000-12008, copied to dg_12000-12008.json; the same states
# relabelled with the wait option: --seeds 12000-12008 --relabel that file --out dw_12000-12008.json);
# then this call refits candidates side by side (two at a time: the call sees 2 cores) and returns each
# as a tar of its checkpoint folder, with its validation on seeds 2000-2001 in its log. One better than
# the shipped student there would go to the rule on seeds 3000-3009 (none was; docs/RESULTS.md).
# Carry .whl, .devrun/s7.tgz (TPC-H data), .devrun/pools11c (the no-wait expert pool of 10000-10007,
# as the shipped student saw it, and the DAgger pool) and .devrun/old_student (the session-8 student).
#
#   K=/root/keep OUT=... PHASE=1|2 bash scripts/device/cjs_dagger.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, the environment, fresh_machine
fresh_machine || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt"; nproc >> "$OUT/gpu.txt"
export OMP_NUM_THREADS=1
EXPERT=${EXPERT:-.devrun/pools11c/nw_10000-10007.json}  # the no-wait expert pool the shipped student was cloned on
DAGGER=${DAGGER:-.devrun/pools11c/dg_12000-12008.json}
RELABEL=${RELABEL:-.devrun/pools11c/dw_12000-12008.json}  # the same states labelled by the expert with waits
fit() {  # NAME START POOLS EPOCHS [KL_BETA]
  timeout "${FIT_S:-500}" python3 -m distill.cjs --role student --teacher agents/pretrained/cjs_gnn --init random \
    --init-from "$2" --pool-file "$3" --bc-epochs "$4" --kl-beta "${5:-0.5}" --dagger-rounds 0 --eval-seeds 0 --out "$W/$1" \
    > "$OUT/$1.log" 2>&1
  echo "$1 rc $?"; grep -E "validation|pool:" "$OUT/$1.log" | tail -2
  tar czf "$OUT/$1.tgz" -C "$W" "$1"
}
case "${PHASE:-1}" in  # two candidates per call, side by side
1) fit agg agents/pretrained/student_cjs_v1 "$EXPERT,$DAGGER" 2 &
   fit dg agents/pretrained/student_cjs_v1 "$DAGGER" 2 ;;
2) fit agg8 .devrun/old_student "$EXPERT,$DAGGER" 2 &
   fit agg4 agents/pretrained/student_cjs_v1 "$EXPERT,$DAGGER" 4 ;;
3) fit nokl agents/pretrained/student_cjs_v1 "$EXPERT" 2 0 &  # the expert's pool without the GNN's KL
   fit nokl4 agents/pretrained/student_cjs_v1 "$EXPERT" 4 0 ;;
4) fit dw agents/pretrained/student_cjs_v1 "$EXPERT,$RELABEL" 2 &  # the DAgger states, labels with waits
   fit dwnokl agents/pretrained/student_cjs_v1 "$EXPERT,$RELABEL" 2 0 ;;
esac
wait
