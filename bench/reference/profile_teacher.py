"""torch.profiler table of the PyTorch reference's MNIST teacher step (mnist-tiny, batch 32).

Usage: /usr/bin/python3 bench/reference/profile_teacher.py [threads]  (default: every core)

Three warm-up steps, then four profiled ones; prints the ops by self CPU time (divide by 4 for a
step). The per-op counterpart of ours is the `mnist-teacher-step-profile` row of `pnpm -s bench`.
"""
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import di_bench  # noqa: E402

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count())
teacher, data, labels, num_classes, _shape = di_bench.build('unet')
trainer = di_bench.TeacherTrainer(teacher, data, labels, num_classes, 32)
for _ in range(3):
    trainer.step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(4):
        trainer.step()
print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
