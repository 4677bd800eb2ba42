#!/usr/bin/env bash
# Session-13 GPU-host job (behind docs/RESULTS.md): distil a student-wfair hybrid back into the student
# alone. The hybrid (agents.cjs.WaitGate: the shipped student's waits, wfair's placement) schedules the
# pool and labels the states the learner reaches in the DAgger rounds, so the labels keep the shipped
# student's own waits and carry wfair's placement wherever it sends an executor: PHASE=1 wfair's job, stage
# and limit (student-wfair); PHASE=2 wfair's job and stage with the student's own limit (student-wfair-slot,
# its pool recorded on the project CPU first:
#   python -m distill.cjs pool --seeds 10000-10007 --jobs 50 --procs 2 --scheduler student-wfair-slot \
#       --out .devrun/pools13/slot_10000-10007.json). The learner
# starts as the shipped student, without a KL term (the labeler is its own timing). Two candidates side by
# side (the call sees 2 cores); each returns its checkpoint folder as a tar, its validation on seeds
# 2000-2001 (100 jobs) in its log, the best so far kept as it trains. Carry .whl and .devrun/s7.tgz.
#
#   K=/root/keep OUT=... PHASE=1|2|3|4 bash experiments/cjs_selfplace.sh
source "$(dirname "$0")/cjs_common.sh"  # $K, $W, the environment, fresh_machine
fresh_machine || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt"; nproc >> "$OUT/gpu.txt"
export OMP_NUM_THREADS=1
fit() {  # NAME LR POOL [more distill.cjs arguments]
  local name=$1 lr=$2 pool=$3; shift 3
  timeout "${FIT_S:-520}" python -m distill.cjs student --teacher '' --init random --task-init '' \
    --init-from agents/pretrained/student_cjs_v1 --pool "$pool" --lr "$lr" --eval-seeds 0 --out "$W/$name" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name rc $?"; grep -E "validation|pool:" "$OUT/$name.log" | tail -4
  tar czf "$OUT/$name.tgz" -C "$W" "$name"
}
SLOT=${SLOT:-.devrun/pools13/slot_10000-10007.json}  # student-wfair-slot's own pool, recorded on the project CPU
case "${PHASE:-1}" in
1) fit sp3 3e-4 student-wfair --bc-episodes 8 --bc-epochs 3 --dagger-rounds 2 --dagger-episodes 8 --dagger-epochs 2 &
   fit sp10 1e-3 student-wfair --bc-episodes 8 --bc-epochs 3 --dagger-rounds 2 --dagger-episodes 8 --dagger-epochs 2 ;;
2) fit sl3 3e-4 student-wfair-slot --pool-file "$SLOT" --bc-epochs 3 --dagger-rounds 0 &
   fit sl1 1e-4 student-wfair-slot --pool-file "$SLOT" --bc-epochs 3 --dagger-rounds 0 ;;
3) SLOT2=${SLOT2:-.devrun/pools13/slot_10008-10015.json}  # 8 more workloads, same command
   fit sl5 3e-4 student-wfair-slot --pool-file "$SLOT,$SLOT2" --bc-epochs 5 --dagger-rounds 0 &
   fit sl8 3e-4 student-wfair-slot --pool-file "$SLOT,$SLOT2" --bc-epochs 8 --dagger-rounds 0 ;;
4) SLOT2=${SLOT2:-.devrun/pools13/slot_10008-10015.json}  # the same, the student given wfair's statistics
   fit sf4 3e-4 student-wfair-slot --share-features true --pool-file "$SLOT,$SLOT2" --bc-epochs 4 --dagger-rounds 0 &
   fit sf8 3e-4 student-wfair-slot --share-features true --pool-file "$SLOT,$SLOT2" --bc-epochs 8 --dagger-rounds 0 ;;
esac
wait
