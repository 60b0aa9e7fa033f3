"""scripts/gpu-check.sh, run through its CPU-equivalent path (tiny demo, 64 px, no AMP)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "TRAPLENS_HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
            "PYTHON": str(ROOT / ".venv" / "bin" / "python"), **env}
    return subprocess.run(["bash", "scripts/gpu-check.sh"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=500)


@pytest.mark.slow
def test_gpu_check_cpu_equivalent(tmp_path):
    home = tmp_path / "work folder"  # paths with spaces stay whole
    r = _run(home, GPU_CHECK_DEVICE="cpu", GPU_CHECK_AMP="0", GPU_CHECK_N_IMAGES="40",
             GPU_CHECK_SIZE="64", GPU_CHECK_BATCH="16", GPU_CHECK_WORKERS="0")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lines = re.findall(r"gpu-check (single|torchrun) \(cpu.*: train ([\d.]+) images/s, "
                       r"predict ([\d.]+) images/s", r.stdout)
    assert [m[0] for m in lines] == ["single", "torchrun"], r.stdout
    assert all(float(m[1]) > 0 and float(m[2]) > 0 for m in lines)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_check_on_cuda(tmp_path):
    r = _run(tmp_path, GPU_CHECK_N_IMAGES="600")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("(cuda, amp=1") == 2


def test_gpu_check_refuses_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    r = _run(tmp_path)
    assert r.returncode != 0 and "CUDA is not available" in r.stderr
