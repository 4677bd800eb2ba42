#!/usr/bin/env bash
# Issues #24 and #25 side by side on one GPU (three calls; the machine has 16 cores and room for both):
#
#   PHASE=setup  carry .whl, .devrun/abr.tgz, .devrun/cjs_data.tgz, .devrun/part_aa (about 55 MB; move every
#                checkpoint but agents/pretrained/cjs_gnn out of the tree for the calls)
#   PHASE=T      carry .devrun/part_ab: the CJS teacher (cjs_pair.sh T) beside the ABR teacher re-adapted on the
#                randomised links (abr_pair.sh CT)
#   PHASE=S      the call right after T: the CJS student and the CJS teacher's test (cjs_pair.sh S) beside the ABR
#                student of the re-adapted teacher, if it scored above the shipped one on validation (abr_pair.sh E)
#
# Each task keeps its own run folder ($K/run_cjs, $K/run_abr) and brings back its own files (8 in all); the two
# drivers' output is printed at the end.
source "$(dirname "$0")/device_env.sh"
here=$(dirname "$0")

case "${PHASE:?}" in
  setup)
    PHASE=setup bash "$here/cjs_pair.sh"
    tar xzf .devrun/abr.tgz -C "$K" && ls "$K/data/abr" "$K/pools"
    ;;
  T|S)
    gguf || exit 1  # once, before the two tasks share it
    if [ "$PHASE" = T ]; then a=CT; else a=E; fi
    W=$K/run_cjs PHASE=$PHASE bash "$here/cjs_pair.sh" > "$K/cjs_$PHASE.txt" 2>&1 &
    W=$K/run_abr PHASE=$a bash "$here/abr_pair.sh" > "$K/abr_$PHASE.txt" 2>&1 &
    wait
    tail -n 25 "$K/cjs_$PHASE.txt" "$K/abr_$PHASE.txt"
    ;;
esac
