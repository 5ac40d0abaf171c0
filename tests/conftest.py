"""Test-session settings.

The suite runs on 2 cores with two pytest-xdist workers. PyTorch's OpenMP pool defaults to one thread
per core, so two workers (and the subprocesses some tests start) would run 4+ spinning threads on 2
cores, which measured 5-20x slower than one thread each. One intra-op thread per process, set in
the environment before torch is imported, so subprocesses inherit it too.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
