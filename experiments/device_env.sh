# Sourced by abr_pair.sh and cjs_pair.sh: the device machine's layout under $K (kept between calls while the
# machine is warm: 30 s), the environment the runs need, and the SmolLM2 GGUF joined from its two carried halves.
set -u
K=${K:-/root/keep}
W=${W:-$K/run}  # pairs.sh gives each task its own
mkdir -p "$K/smol" "$W" "$OUT"
export PYTHONPATH=$K/site:$PWD HF_HUB_OFFLINE=1 MAMBA4NET_DATA=$K/data MAMBA4NET_SMOLLM2_DIR=$K/smol PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=4
GGUF=$K/smol/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

gguf() {  # $K/part_aa (setup call) + .devrun/part_ab (this call) -> $GGUF, checked against its SHA-256
  [ -f "$GGUF" ] && return 0
  cat "$K/part_aa" .devrun/part_ab > "$GGUF.tmp"
  echo "$GGUF_SHA  $GGUF.tmp" | sha256sum -c - && mv "$GGUF.tmp" "$GGUF"
  nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || true
}
