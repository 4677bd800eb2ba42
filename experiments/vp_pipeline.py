"""VP teacher (SmolLM2-135M + LoRA 32), then the distilled student (CWR + DKO) and the student trained
alone (the Mamba4Net-S ablation), in one process so the backbone loads once. Behind docs/RESULTS.md.

    OUT=... python3 experiments/vp_pipeline.py [TEACHER_EPOCHS STUDENT_EPOCHS [SCHEDULE [TEACHER_LR]]]
"""

import json
import os
import sys

from distill.vp_llm import VPDistillation as Args, train

out = os.environ["OUT"]
te, se = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (5, 8)
schedule = sys.argv[3] if len(sys.argv) > 3 else "constant"
tlr = float(sys.argv[4]) if len(sys.argv) > 4 else 3e-4
cosine = schedule == "cosine"  # a cosine run goes to its end (patience = epochs); the best epoch is kept


def show(name, metrics):
    print(name, json.dumps({k: v for k, v in metrics.items() if k != "history"}, default=float), flush=True)


teacher, mt = train(Args(role="teacher", epochs=te, patience=te if cosine else 2, lr=tlr, schedule=schedule,
                         device="cuda", out=f"{out}/teacher_vp"))
show("teacher", mt)
common = dict(role="student", epochs=se, patience=se if cosine else 3, lr=1e-3, schedule=schedule, device="cuda")
_, ms = train(Args(teacher="", init="cwr", out=f"{out}/student_vp", **common), teacher=teacher)
show("student (CWR + DKO)", ms)
_, ma = train(Args(teacher="", init="random", alpha=0.0, out=f"{out}/student_vp_alone", **common))
show("student alone", ma)
