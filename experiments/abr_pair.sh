#!/usr/bin/env bash
# Issue #24 on one GPU: ABR teachers re-adapted on the clean splits and domain-randomised links, a student
# distilled from the teacher that ships, everything picked on validation (fcc-valid-clean and oboe).
#
#   PHASE=setup  carry .whl, .devrun/abr.tgz (data/abr, pools/) and .devrun/part_aa -> $K
#   PHASE=A      carry .devrun/part_ab: the GGUF reassembled and checked, then side by side
#                t_rand  RobustMPC pool of fcc-train-clean+randomized:200, 2 DAgger rounds labelled by
#                        RobustMPC on the same links
#                t_fcc   the same on fcc-train-clean alone (does randomisation help?)
#                s_ship  a student from the shipped teacher (CWR, DKO, DAgger on fcc-train-clean+randomized:200)
#   PHASE=C      A and B in one call (t_rand, s_ship, s_ship_fcc side by side; s_trand if t_rand scores above
#                the shipped teacher and time is left), for a machine that may not stay warm between calls
#   PHASE=D      C without the teacher re-adaptation (s_ship, s_ship_fcc, the shipped teacher's validation)
#   PHASE=B      the teacher with the best validation score (t_rand, t_fcc or the shipped one, scored in phase A
#                by evaluation.compare) -> students s_main (DAgger on fcc-train-clean+randomized:200) and
#                s_fcc (DAgger on fcc-train-clean); the best-scoring student is collected with its teacher.
#
# Validation score of an agent: the mean over {fcc-valid-clean, oboe} of its mean QoE divided by RobustMPC's
# on the same set (0.5824 and 2.2437: deterministic, CPU, `compare --agents robustmpc`). fcc-test is not
# looked at here.
set -u
K=${K:-/root/keep}
W=$K/run
mkdir -p "$K/smol" "$W" "$OUT"
export PYTHONPATH=$K/site:$PWD HF_HUB_OFFLINE=1 MAMBA4NET_DATA=$K/data MAMBA4NET_SMOLLM2_DIR=$K/smol PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=4
LIMIT=${LIMIT:-470}  # seconds phase C may take in all
GGUF=$K/smol/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
# (TSTEPS, SSTEPS, RAND, FCC, EVALS: smaller values for a dry run on a CPU)
RAND=${RAND:-fcc-train-clean+randomized:200}
FCC=${FCC:-fcc-train-clean}
EVALS=${EVALS:-fcc-valid-clean,oboe}
T="--lora-rank 32 --condition none --steps ${TSTEPS:-1200} --batch-size 64 --dagger-rounds 2 --dagger-labeler robustmpc
   --save-every 100000 --eval-traces $EVALS"
S="--policies robustmpc --init cwr --steps ${SSTEPS:-3000} --save-every 100000 --eval-traces $EVALS"

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl
  tar xzf .devrun/abr.tgz -C "$K"
  cp .devrun/part_aa "$K/part_aa"
  ls "$K" "$K/data/abr" "$K/pools"
}

gguf() {
  [ -f "$GGUF" ] && return 0
  cat "$K/part_aa" .devrun/part_ab > "$GGUF.tmp"
  echo "$GGUF_SHA  $GGUF.tmp" | sha256sum -c - && mv "$GGUF.tmp" "$GGUF"
}

phase_a() {
  gguf || exit 1
  nvidia-smi --query-gpu=name --format=csv,noheader
  timeout 540 python3 -m distill.abr teacher --pool "$K/pools/rmpc_rand" --dagger-traces "$RAND" $T --out "$W/t_rand" > "$W/t_rand.log" 2>&1 &
  timeout 540 python3 -m distill.abr teacher --pool "$K/pools/rmpc_fcc" --dagger-traces "$FCC" $T --out "$W/t_fcc" > "$W/t_fcc.log" 2>&1 &
  timeout 540 python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher agents/pretrained/teacher_abr $S --dagger-traces "$RAND" \
    --out "$W/s_ship" > "$W/s_ship.log" 2>&1 &
  timeout 540 python3 -m evaluation.compare --env abr --traces "$EVALS" --agents teacher --no-optimum \
    --no-plots --quiet --out "$W/t_ship_eval" > "$W/t_ship_eval.log" 2>&1 &
  wait
  tail -3 "$W"/*.log
  collect t_rand t_fcc s_ship
}

score() {  # FOLDER... -> "score name" lines, best first
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

phase_b() {
  gguf || exit 1
  mkdir -p "$W/t_ship" && cp agents/pretrained/teacher_abr/adapter.safetensors "$W/t_ship/"
  python3 - "$W" <<'PY'  # the shipped teacher's folder with its validation numbers (phase A's compare) in place
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
cfg = json.loads(Path("agents/pretrained/teacher_abr/config.json").read_text())
res = json.loads((w / "t_ship_eval/abr_results.json").read_text())
cfg["metrics"]["eval"] = {name: next(r for r in s["summary"] if r["agent"] == "teacher")
                          for name, s in res["sets"].items()}
(w / "t_ship/config.json").write_text(json.dumps(cfg, indent=1))
PY
  score "$W/t_rand" "$W/t_fcc" "$W/t_ship" | tee "$W/teacher_scores.txt"
  local t; t=$(head -1 "$W/teacher_scores.txt" | cut -d' ' -f2)
  echo "chosen teacher: $t"
  timeout 500 python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher "$t" $S \
    --dagger-traces "$RAND" --out "$W/s_main" > "$W/s_main.log" 2>&1 &
  timeout 500 python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher "$t" $S \
    --dagger-traces "$FCC" --out "$W/s_fcc" > "$W/s_fcc.log" 2>&1 &
  wait
  tail -3 "$W"/s_main.log "$W"/s_fcc.log
  score "$W/s_main" "$W/s_fcc" "$W/s_ship" | tee "$W/student_scores.txt"
  cp "$W/teacher_scores.txt" "$W/student_scores.txt" "$OUT/"
  collect "$(basename "$t")" s_main s_fcc
}

phase_c() {  # one call (the machine may not stay): A and B folded, each run under its own time limit
  gguf || exit 1
  nvidia-smi --query-gpu=name --format=csv,noheader
  local t0=$SECONDS
  timeout 420 python3 -m distill.abr teacher --pool "$K/pools/rmpc_rand" --dagger-traces "$RAND" $T --out "$W/t_rand" \
    > "$W/t_rand.log" 2>&1 &
  local tp=$!
  timeout 400 python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher agents/pretrained/teacher_abr $S \
    --dagger-traces "$RAND" --out "$W/s_ship" > "$W/s_ship.log" 2>&1 &
  timeout 400 python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher agents/pretrained/teacher_abr $S \
    --dagger-traces "$FCC" --out "$W/s_ship_fcc" > "$W/s_ship_fcc.log" 2>&1 &
  timeout 400 python3 -m evaluation.compare --env abr --traces "$EVALS" --agents teacher --no-optimum \
    --no-plots --quiet --out "$W/t_ship_eval" > "$W/t_ship_eval.log" 2>&1 &
  local cp=$!
  wait "$tp" "$cp"
  echo "teacher done after $((SECONDS - t0)) s"
  ship_folder
  score "$W/t_rand" "$W/t_ship" | tee "$W/teacher_scores.txt"
  local left=$((LIMIT - (SECONDS - t0)))
  if [ "$(head -1 "$W/teacher_scores.txt" | cut -d' ' -f2)" = "$W/t_rand" ] && [ "$left" -gt 60 ]; then
    timeout "$left" python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher "$W/t_rand" $S \
      --dagger-traces "$RAND" --out "$W/s_trand" > "$W/s_trand.log" 2>&1
  fi
  wait
  score "$W/s_ship" "$W/s_ship_fcc" "$W/s_trand" | tee "$W/student_scores.txt"
  cp "$W/teacher_scores.txt" "$W/student_scores.txt" "$OUT/"
  collect t_rand s_ship s_ship_fcc s_trand
}

phase_d() {  # the short version of C, for a call of about six minutes: the students from the shipped teacher
  gguf || exit 1
  nvidia-smi --query-gpu=name --format=csv,noheader
  local d=${DLIMIT:-330}
  timeout "$d" python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher agents/pretrained/teacher_abr $S \
    --dagger-traces "$RAND" --out "$W/s_ship" > "$W/s_ship.log" 2>&1 &
  timeout "$d" python3 -m distill.abr student --pool "$K/pools/rmpc_rand" --teacher agents/pretrained/teacher_abr $S \
    --dagger-traces "$FCC" --out "$W/s_ship_fcc" > "$W/s_ship_fcc.log" 2>&1 &
  timeout "$d" python3 -m evaluation.compare --env abr --traces "$EVALS" --agents teacher --no-optimum \
    --no-plots --quiet --out "$W/t_ship_eval" > "$W/t_ship_eval.log" 2>&1 &
  wait
  ship_folder
  score "$W/t_ship" | tee "$W/teacher_scores.txt"
  score "$W/s_ship" "$W/s_ship_fcc" | tee "$W/student_scores.txt"
  cp "$W/teacher_scores.txt" "$W/student_scores.txt" "$OUT/"
  collect s_ship s_ship_fcc
}

ship_folder() {  # the shipped teacher's folder with its validation numbers (this job's compare) in place
  mkdir -p "$W/t_ship" && cp agents/pretrained/teacher_abr/adapter.safetensors "$W/t_ship/"
  python3 - "$W" <<'PY'
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
cfg = json.loads(Path("agents/pretrained/teacher_abr/config.json").read_text())
res = json.loads((w / "t_ship_eval/abr_results.json").read_text())
cfg["metrics"]["eval"] = {name: next(r for r in s["summary"] if r["agent"] == "teacher")
                          for name, s in res["sets"].items()}
(w / "t_ship/config.json").write_text(json.dumps(cfg, indent=1))
PY
}

collect() {  # the named runs' weights and configs, and every log and config as one archive
  for n in "$@"; do
    for f in adapter.safetensors model.safetensors; do
      [ -f "$W/$n/$f" ] && cp "$W/$n/$f" "$OUT/${n}_$f"
    done
  done
  (cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' --exclude='train_state' .)
  ls -la "$OUT"
}

case "${PHASE:?}" in
  setup) setup ;;
  A) phase_a ;;
  B) phase_b ;;
  C) phase_c ;;
  D) phase_d ;;
esac
