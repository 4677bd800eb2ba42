#!/usr/bin/env bash
# Issue #24 on one GPU: a student distilled from the teacher that ships (and a teacher re-adapted on the clean
# splits and domain-randomised links), everything picked on validation (fcc-valid-clean and oboe).
#
#   PHASE=setup  carry .whl, .devrun/abr.tgz (data/abr, pools/) and .devrun/part_aa -> $K
#   PHASE=C      carry .devrun/part_ab (the GGUF is reassembled and checked), then side by side:
#                t_rand      teacher: RobustMPC pool of fcc-train-clean+randomized:200, 2 DAgger rounds labelled by
#                            RobustMPC on the same links
#                s_ship      student from the shipped teacher: CWR, DKO, DAgger on fcc-train-clean+randomized:200
#                s_ship_fcc  the same with DAgger on fcc-train-clean alone (do the randomised links help?)
#                and the shipped teacher's validation numbers; then s_trand, a student from t_rand, if t_rand
#                scores above the shipped teacher and time is left (LIMIT seconds in all)
#   PHASE=D      C without the teacher re-adaptation, each run under DLIMIT seconds (a short call)
#   PHASE=S1     the shortest call: s_ship alone under DLIMIT seconds (the shipped teacher's validation numbers come
#                from the CPU: `compare --traces fcc-valid-clean,oboe --agents teacher`)
#   PHASE=CT     C's teacher re-adaptation alone (t_rand, CTLIMIT seconds), scored against the shipped teacher's
#                validation numbers measured on the CPU (SHIP_VALID; pairs.sh runs it beside the CJS teacher)
#   PHASE=E      the call right after C or CT on the same warm machine: s_trand (ELIMIT seconds) if t_rand scored above
#                the shipped teacher on validation, else nothing
#
# Validation score of an agent: the mean over {fcc-valid-clean, oboe} of its mean QoE divided by RobustMPC's
# on the same set (0.5824 and 2.2437: deterministic, CPU, `compare --agents robustmpc`). fcc-test is not
# looked at here. A warm machine keeps $K between calls for 30 s.
source "$(dirname "$0")/device_env.sh"
# (TSTEPS, SSTEPS, RAND, FCC, EVALS: smaller values for a dry run on a CPU)
RAND=${RAND:-fcc-train-clean+randomized:200}
FCC=${FCC:-fcc-train-clean}
EVALS=${EVALS:-fcc-valid-clean,oboe}
T="--lora-rank 32 --condition none --steps ${TSTEPS:-1200} --batch-size 64 --dagger-rounds 2 --dagger-labeler robustmpc
   --save-every 100000 --eval-traces $EVALS"
S="--policies robustmpc --init cwr --steps ${SSTEPS:-3000} --save-every 100000 --eval-traces $EVALS"
SHIPPED=agents/pretrained/teacher_abr

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl
  tar xzf .devrun/abr.tgz -C "$K"
  cp .devrun/part_aa "$K/part_aa"
  ls "$K" "$K/data/abr" "$K/pools"
}

student() {  # SECONDS NAME TEACHER DAGGER_TRACES: a student run in the background
  timeout "$1" python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher "$3" $S --dagger-traces "$4" \
    --out "$W/$2" > "$W/$2.log" 2>&1 &
}

shipped_teacher() {  # SECONDS: the shipped teacher on the validation sets, in the background
  timeout "$1" python3 -m evaluation.compare --env abr --traces "$EVALS" --agents teacher --no-optimum \
    --no-plots --quiet --out "$W/t_ship_eval" > "$W/t_ship_eval.log" 2>&1 &
}

phase_c() {
  gguf || exit 1
  local t0=$SECONDS limit=${LIMIT:-470}
  timeout 420 python3 -m distill.abr teacher --pool "$K/pools/rmpc_rand" --dagger-traces "$RAND" $T --out "$W/t_rand" \
    > "$W/t_rand.log" 2>&1 &
  local tp=$!
  student 400 s_ship "$SHIPPED" "$RAND"
  student 400 s_ship_fcc "$SHIPPED" "$FCC"
  shipped_teacher 400
  local cp=$!
  wait "$tp" "$cp"
  echo "teacher done after $((SECONDS - t0)) s"
  ship_folder
  score "$W/t_rand" "$W/t_ship" | tee "$W/teacher_scores.txt"
  local left=$((limit - (SECONDS - t0)))
  if [ "$(head -1 "$W/teacher_scores.txt" | cut -d' ' -f2)" = "$W/t_rand" ] && [ "$left" -gt 60 ]; then
    student "$left" s_trand "$W/t_rand" "$RAND"
  fi
  finish t_rand s_ship s_ship_fcc s_trand
}

phase_ct() {
  gguf || exit 1
  timeout "${CTLIMIT:-540}" python3 -m distill.abr teacher --pool "$K/pools/rmpc_rand" --dagger-traces "$RAND" $T \
    --out "$W/t_rand" > "$W/t_rand.log" 2>&1
  echo "teacher rc $?"
  # the shipped teacher on validation (CPU, commit 2a47491: `compare --traces fcc-valid-clean,oboe --agents teacher`)
  mkdir -p "$W/t_ship"
  echo "{\"metrics\": {\"eval\": {\"fcc-valid-clean\": {\"qoe\": 0.5726239}, \"oboe\": {\"qoe\": 2.0669}}}}" \
    > "$W/t_ship/config.json"
  score "$W/t_rand" "$W/t_ship" | tee "$W/teacher_scores.txt"
  finish t_rand
}

phase_d() {
  gguf || exit 1
  local d=${DLIMIT:-330}
  student "$d" s_ship "$SHIPPED" "$RAND"
  student "$d" s_ship_fcc "$SHIPPED" "$FCC"
  shipped_teacher "$d"
  wait
  ship_folder
  score "$W/t_ship" | tee "$W/teacher_scores.txt"
  finish s_ship s_ship_fcc
}

phase_s1() {
  gguf || exit 1
  student "${DLIMIT:-330}" s_ship "$SHIPPED" "$RAND"
  wait
  : > "$W/teacher_scores.txt"
  finish s_ship
}

phase_e() {
  gguf || exit 1
  if [ "$(head -1 "$W/teacher_scores.txt" | cut -d' ' -f2)" != "$W/t_rand" ]; then
    echo "the shipped teacher scored above t_rand: no student of t_rand"; cat "$W/teacher_scores.txt"; exit 0
  fi
  student "${ELIMIT:-420}" s_trand "$W/t_rand" "$RAND"
  cp "$W/t_rand/config.json" "$OUT/t_rand_config.json"
  finish s_trand
}

finish() {  # RUNS...: wait, score the students, bring back the runs' weights, the scores and every log
  wait
  score "$W/s_ship" "$W/s_ship_fcc" "$W/s_trand" | tee "$W/student_scores.txt"
  cp "$W/teacher_scores.txt" "$W/student_scores.txt" "$OUT/"
  for n in "$@"; do
    for f in adapter.safetensors model.safetensors; do
      [ -f "$W/$n/$f" ] && cp "$W/$n/$f" "$OUT/${n}_$f"
    done
  done
  (cd "$W" && tar czf "$OUT/abr_runs.tar.gz" --exclude='*.safetensors' --exclude='train_state' --exclude='.*train_state' .)
  ls -la "$OUT"
}

score() {  # FOLDER... -> "score folder" lines, best first
  python3 - "$@" <<'PY'
import json, sys
from pathlib import Path
ref = {"fcc-valid-clean": 0.5824, "oboe": 2.2437}
rows = []
for f in sys.argv[1:]:
    p = Path(f) / "config.json"
    if not p.is_file():
        continue
    ev = json.loads(p.read_text())["metrics"]["eval"]
    sets = [s for s in ref if s in ev]
    rows.append((sum(ev[s]["qoe"] / ref[s] for s in sets) / len(sets), f))
for s, f in sorted(rows, reverse=True):
    print(f"{s:.5f} {f}")
PY
}

ship_folder() {  # the shipped teacher's folder with its validation numbers (this job's compare) in place
  mkdir -p "$W/t_ship" && cp "$SHIPPED/adapter.safetensors" "$W/t_ship/"
  python3 - "$W" "$SHIPPED" <<'PY'
import json, sys
from pathlib import Path
w, shipped = Path(sys.argv[1]), Path(sys.argv[2])
cfg = json.loads((shipped / "config.json").read_text())
res = json.loads((w / "t_ship_eval/abr_results.json").read_text())
cfg["metrics"]["eval"] = {name: next(r for r in s["summary"] if r["agent"] == "teacher")
                          for name, s in res["sets"].items()}
(w / "t_ship/config.json").write_text(json.dumps(cfg, indent=1))
PY
}

case "${PHASE:?}" in
  setup) setup ;;
  C) phase_c ;;
  CT) phase_ct ;;
  D) phase_d ;;
  S1) phase_s1 ;;
  E) phase_e ;;
esac
