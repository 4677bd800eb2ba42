#!/usr/bin/env bash
# The ABR teacher + student runs behind docs/RESULTS.md, on one GPU.
#
#   bash experiments/abr_pipeline.sh teachers|students|collect|all
#
# Environment: OUT (results folder), WORK (scratch, default /root/keep/run), POOL_RMPC (RobustMPC +
# offline-optimal pool of fcc-train), POOL_BEST (best episode per trace of five policies on fcc-train,
# `python -m distill.abr pool --policy robustmpc,mpc-netllm,rate-based,bola,bba --repeats 2 ... --best-per-start`),
# TSTEPS / SSTEPS (teacher / student optimiser steps), and what the package needs
# (MAMBA4NET_DATA, MAMBA4NET_SMOLLM2_DIR, HF_HUB_OFFLINE=1).
set -u
W=${WORK:-/root/keep/run}
mkdir -p "$W" "$OUT"
TSTEPS=${TSTEPS:-1200}
SSTEPS=${SSTEPS:-3000}
EVAL=${EVAL:-fcc-valid,fcc-test}  # the first one picks the teacher
DAGGER=${DAGGER:-fcc-train}
phase=${1:-all}

teachers() {
  local common="--lora-rank 32 --condition none --steps $TSTEPS --batch-size 64 --eval-traces $EVAL --save-every 100000"
  python -m distill.abr teacher --pool "$POOL_RMPC" --policies robustmpc --out "$W/t_rmpc" $common > "$W/t_rmpc.log" 2>&1 &
  python -m distill.abr teacher --pool "$POOL_BEST" --out "$W/t_best" $common > "$W/t_best.log" 2>&1 &
  python -m distill.abr teacher --pool "$POOL_BEST" --backbone random:smollm2-135m --out "$W/t_best_random" $common \
    > "$W/t_best_random.log" 2>&1 &
  wait
  # pick the teacher for distillation on fcc-valid (never on the test set)
  python3 - "$W" "${EVAL%%,*}" <<'PY'
import json, sys
from pathlib import Path
w, sel = Path(sys.argv[1]), sys.argv[2]
scores = {n: json.loads((w / n / "config.json").read_text())["metrics"]["eval"][sel]["qoe"]
          for n in ("t_rmpc", "t_best") if (w / n / "config.json").is_file()}
best = max(scores, key=scores.get)
print(f"teachers on {sel}:", scores, "-> chosen", best)
(w / "chosen").write_text(best)
PY
}

students() {
  local t; t=$(cat "$W/chosen")
  local pool="--pool $POOL_BEST"
  [ "$t" = t_rmpc ] && pool="--pool $POOL_RMPC --policies robustmpc"
  local common="$pool --steps $SSTEPS --eval-traces $EVAL --dagger-traces $DAGGER --save-every 100000"
  python -m distill.abr student $common --teacher "$W/$t" --init cwr --out "$W/s_main" > "$W/s_main.log" 2>&1 &
  python -m distill.abr student $common --teacher "$W/$t" --init random --out "$W/s_random_init" > "$W/s_random_init.log" 2>&1 &
  python -m distill.abr student $common --teacher "$W/$t" --init cwr --dagger-rounds 0 --out "$W/s_offline" > "$W/s_offline.log" 2>&1 &
  python -m distill.abr student $common --teacher "" --init random --out "$W/s_alone" > "$W/s_alone.log" 2>&1 &
  wait
}

collect() {
  local t; t=$(cat "$W/chosen" 2>/dev/null || echo t_best)
  [ -f "$W/$t/adapter.safetensors" ] && cp "$W/$t/adapter.safetensors" "$OUT/teacher_adapter.safetensors" \
    && cp "$W/$t/config.json" "$OUT/teacher_config.json"
  [ -f "$W/s_main/model.safetensors" ] && cp "$W/s_main/model.safetensors" "$OUT/student_model.safetensors" \
    && cp "$W/s_main/config.json" "$OUT/student_config.json"
  (cd "$W" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='.*train_state' . )
  ls -la "$OUT"
}

case "$phase" in
  teachers) teachers ;;
  students) students ;;
  collect) collect ;;
  all) teachers; students; collect ;;
esac
