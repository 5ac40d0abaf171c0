"""Test-session settings and the fixtures shared by several test files.

The suite runs on 2 cores with two pytest-xdist workers. PyTorch's OpenMP pool defaults to one thread
per core, so two workers (and the subprocesses some tests start) would run 4+ spinning threads on 2
cores, which measured 5-20x slower than one thread each. One intra-op thread per process, set in
the environment before torch is imported, so subprocesses inherit it too.

Shared code that is not a fixture is in ``tests/helpers/`` (imported as ``helpers``: pytest puts this
folder on ``sys.path`` because this conftest is outside any package).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers.train_tiny import write_tiny

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

OFFICIAL_FIXTURES = Path(__file__).parent / "fixtures" / "official"


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., Path]:
    """Writes the tiny training config (``helpers/train_tiny.py``) under ``tmp_path`` and returns its path.

    ``tiny_config()`` -> ``tmp_path/tiny.yaml``; ``tiny_config("a.yaml", optim={"steps": 6})`` merges
    the given sections into the tiny config first.
    """

    def write(name: str = "tiny.yaml", **sections: dict) -> Path:
        return write_tiny(tmp_path / name, **sections)

    return write


@pytest.fixture(scope="session")
def official_vectors() -> dict[str, torch.Tensor]:
    """``tests/fixtures/official/tamvt_official_vectors.safetensors`` (the authors' weights and vectors
    A, B, C; see the README there), read once per session. Do not modify the tensors in place."""
    from safetensors.torch import load_file

    return load_file(str(OFFICIAL_FIXTURES / "tamvt_official_vectors.safetensors"))


@pytest.fixture(scope="module")
def small_model():
    """A random ``tamvt-small`` model in eval mode (seed 0)."""
    import torch

    from tamvt.config import load_preset
    from tamvt.models.tamvt import build_tamvt

    torch.manual_seed(0)
    return build_tamvt(load_preset("tamvt-small").model).eval()
