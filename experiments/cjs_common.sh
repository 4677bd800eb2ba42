# Sourced by the device scripts (gnn_pool.sh, oneshot_fused.sh): the machine's layout under $K (kept between calls while the machine is warm), the setup
# of a fresh machine and the held-out run split over two processes.
set -u
K=${K:-/root/keep}
mkdir -p "$K/parts" "$K/smol" "$K/run" "$OUT"
export PYTHONPATH=$K/site:$PWD HF_HUB_OFFLINE=1 MAMBA4NET_DATA=$K/data MAMBA4NET_SMOLLM2_DIR=$K/smol PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=2
W=$K/run
GGUF=$K/smol/SmolLM2-135M-Instruct.Q4_1.gguf

install_wheels() {  # the carried wheels (.whl: gymnasium and what it needs) into $K/site, once per machine
  [ -d "$K/site/gymnasium" ] && return 0
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$K/site" .whl/*.whl
}

fresh_machine() {  # on a fresh machine (no $K/data/cjs yet): the carried wheels and TPC-H data (.whl, .devrun/s7.tgz)
  [ -d "$K/data/cjs" ] && return 0
  install_wheels && tar xzf .devrun/s7.tgz -C "$K" data/cjs
}

heldout() {  # NAME SECONDS [FIRST]: seeds FIRST..FIRST+9 (default 2000: validation) in two processes
  # of 5 seeds, merged into $W/NAME_eval; NAME is a checkpoint folder under $W
  [ -f "$W/$1/config.json" ] || return 1
  local a=${3:-2000}
  timeout "$2" python3 -m distill.cjs student --eval-only "$W/$1" --eval-first "$a" --eval-seeds 5 --out "$W/$1_e0" \
    > "$W/$1_e0.log" 2>&1 &
  local first=$!
  timeout "$2" python3 -m distill.cjs student --eval-only "$W/$1" --eval-first $((a + 5)) --eval-seeds 5 --out "$W/$1_e1" \
    > "$W/$1_e1.log" 2>&1
  wait "$first"
  python3 -m distill.cjs student --merge-evals "$W/$1_e0,$W/$1_e1" --out "$W/$1_eval" > "$W/$1_eval.log" 2>&1
}
