"""VP teacher (SmolLM2-135M + LoRA 32) then the distilled student (CWR + DKO), in one process so the
backbone loads once. Behind docs/RESULTS.md.   OUT=... python3 scripts/device/vp_pipeline.py [TEACHER_EPOCHS STUDENT_EPOCHS]"""

import json
import os
import sys

from distill.vp import Args, train

out = os.environ["OUT"]
te, se = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (5, 8)
teacher, mt = train(Args(role="teacher", epochs=te, patience=2, lr=3e-4, device="cuda", out=f"{out}/teacher_vp"))
print("teacher", json.dumps({k: v for k, v in mt.items() if k != "history"}, default=float), flush=True)
student, ms = train(Args(role="student", teacher="", init="cwr", epochs=se, patience=3, lr=1e-3, device="cuda",
                         out=f"{out}/student_vp"), teacher=teacher)
print("student", json.dumps({k: v for k, v in ms.items() if k != "history"}, default=float), flush=True)
