#!/usr/bin/env bash
# Issue #25 on one GPU host (16 CPU cores), one call: DAgger of the shipped CJS GNN labelled by the rollout
# expert (python -m distill.cjs lookahead: 16 training workloads a round, one per core, the GPU refits; env FORESEE
# true/false: the expert with or without foresight, SEED: which training workloads, JOBS: jobs per workload),
# the best round on validation seeds 2000-2007 (200 jobs) kept; then it and the shipped GNN scored on validation
# seeds 2008-2019 (200 jobs), the rule that decides whether it replaces the shipped GNN.
# If it scores lower than the shipped GNN there, it is left in $K/gnn_adopt, where cjs_pair.sh's T and S phases
# (the next calls, machine still warm) take it as the GNN to build the teacher and student on.
#   carry .whl and .devrun/cjs_data.tgz (and .devrun/part_aa to do cjs_pair.sh's setup in the same call); move the
#   ABR, VP and CJS LLM checkpoints out of the tree for the call.
#   Dry run on the CPU: K=/tmp/kc OUT=/tmp/o SMALL=1 bash experiments/cjs_lookahead_dagger.sh
source "$(dirname "$0")/device_env.sh"
if [ -n "${SMALL:-}" ]; then
  RUN="--rounds 1 --episodes 2 --jobs 4 --val-seeds 2 --val-jobs 4 --workers 2 --device cpu"
  SCORE="--seeds 2008-2009 --jobs 4 --workers 2"
else
  RUN="--rounds 4 --episodes 16 --jobs ${JOBS:-50} --foresee ${FORESEE:-false} --seed ${SEED:-0} --val-seeds 8"
  RUN="$RUN --val-jobs 200 --workers 16 --device cuda"
  SCORE="--seeds 2008-2019 --jobs 200 --workers 16"
fi
[ -d "$K/site/gymnasium" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target "$K/site" .whl/*.whl
[ -d "$K/data/cjs" ] || tar xzf .devrun/cjs_data.tgz -C "$K"
[ -f .devrun/part_aa ] && cp .devrun/part_aa "$K/part_aa"
timeout "${LIMIT:-510}" python3 -m distill.cjs lookahead --init agents/pretrained/cjs_gnn $RUN \
  --time-budget-s "${BUDGET:-270}" --threads 2 --out "$W/gnn_la" > "$W/gnn_la.log" 2>&1
echo "dagger rc $?"
cp "$W/gnn_la.log" "$OUT/"
if [ ! -f "$W/gnn_la/model.safetensors" ]; then  # stopped by the limit with no round better than the start
  echo "no DAgger round beat the shipped GNN on validation"; grep -v epoch "$W/gnn_la.log" | tail -n 12; exit 0
fi
python3 experiments/cjs_gnn_score.py $SCORE agents/pretrained/cjs_gnn "$W/gnn_la" > "$OUT/scores.json"
python3 - "$OUT/scores.json" "$W/gnn_la" "$K/gnn_adopt" <<'PY'
import json, shutil, sys
scores, new, adopt = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
shipped = scores["agents/pretrained/cjs_gnn"]["mean"]
if scores[new]["mean"] < shipped and not scores[new]["truncated"]:
    shutil.rmtree(adopt, ignore_errors=True)
    shutil.copytree(new, adopt)
    print(f"adopted: {scores[new]['mean']:.2f} s < shipped {shipped:.2f} s")
else:
    print(f"kept the shipped GNN: {scores[new]['mean']:.2f} s vs {shipped:.2f} s")
PY
cp "$W/gnn_la/model.safetensors" "$OUT/gnn_la_model.safetensors"
cp "$W/gnn_la/config.json" "$OUT/gnn_la_config.json"
grep -v epoch "$W/gnn_la.log" | tail -n 12
python3 -c "import json; d=json.load(open('$OUT/scores.json')); print({k: round(v['mean'], 2) for k, v in d.items()})"
