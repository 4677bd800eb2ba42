"""Evaluate saved ABR teachers as they ship: reloaded from their bf16 adapter, on the GPU.

    python3 experiments/reload_eval.py OUT_JSON FOLDER [FOLDER ...]   (traces: fcc-valid, fcc-test)
"""

import json
import sys
import time

import torch

from agents.teacher import TeacherPolicy, load_teacher
from distill.abr_teacher import validate
from traces.atomic import write_text_atomic

out, folders = sys.argv[1], sys.argv[2:]
dev = "cuda" if torch.cuda.is_available() else "cpu"
res = {}
for f in folders:
    t0 = time.perf_counter()
    model, meta = load_teacher(f, device=dev)
    res[f] = validate(lambda: TeacherPolicy(model, meta["target_return"], dev), "fcc-valid,fcc-test", model.cfg.history)
    res[f]["seconds"] = time.perf_counter() - t0
    print(f, json.dumps(res[f], default=float), flush=True)
    write_text_atomic(out, json.dumps(res, indent=2, default=float))
