"""The GPU check script (tests/bench/gpu_check.sh) in its CPU smoke mode: every part runs, or says why it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.bench import gpu_check
from tlstudio.core.engine.batch_size import CPU_BATCH

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "bench" / "gpu_check.sh"


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    """The smoke run's JSON summary, the script started from another folder (it must find the repository itself)."""
    tmp = tmp_path_factory.mktemp("gpu-check")
    out = tmp / "summary.json"
    done = run_script("--cpu-smoke", "--json", str(out), "--work", str(tmp / "work"), cwd=tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def parts_of(summary: dict) -> dict[str, dict]:
    return {p["name"]: p for p in summary["parts"]}


def values(part: dict) -> dict[str, float]:
    return {name: f["value"] for name, f in part["figures"].items()}


def test_smoke_runs_every_part_on_the_cpu(smoke):
    assert smoke["mode"] == gpu_check.SMOKE_MODE
    assert smoke["identity"]["device"] == "cpu"
    assert list(parts_of(smoke)) == ["precision", "auto_batch", "input_pipeline", "busy", "ddp"]
    assert smoke["elapsed_s"] < smoke["budget_s"]


def test_precision_measures_both_arms_of_both_backbones(smoke):
    part = parts_of(smoke)["precision"]
    assert part["status"] == gpu_check.OK
    got = values(part)
    for name in gpu_check.PRECISION_MODELS:
        slow, fast = got[f"{name}_fp32_nchw_images_per_s"], got[f"{name}_fp32_channels_last_images_per_s"]
        assert slow > 0 and fast > 0
        assert got[f"{name}_fp32_channels_last_over_fp32"] == pytest.approx(fast / slow, rel=0.01)
    assert part["reason"]  # says that bf16 is left out on the CPU


def test_auto_batch_is_the_trainers_choice(smoke):
    part = parts_of(smoke)["auto_batch"]
    assert part["status"] == gpu_check.OK
    assert values(part) == {"resnet50_auto_batch_size": CPU_BATCH}


def test_input_pipeline_compares_real_data_with_in_memory(smoke):
    part = parts_of(smoke)["input_pipeline"]
    assert part["status"] == gpu_check.OK
    got = values(part)
    assert got["real_data_images_per_s"] > 0 and got["in_memory_images_per_s"] > 0
    assert got["real_over_in_memory"] == pytest.approx(got["real_data_images_per_s"] / got["in_memory_images_per_s"], rel=0.01)
    assert "gpu_augment_real_over_in_memory" not in got  # a CUDA-only arm


def test_cuda_only_parts_are_skipped_with_a_reason(smoke):
    busy = parts_of(smoke)["busy"]
    assert busy["status"] == gpu_check.SKIPPED and busy["reason"] and not busy["figures"]


def test_processes_part_runs_the_one_process_arm(smoke):
    part = parts_of(smoke)["ddp"]
    assert part["status"] == gpu_check.OK, part["reason"]
    got = values(part)
    assert got["ddp_1_process_images_per_s"] > 0
    assert "ddp_2_over_1_process" not in got and part["reason"]  # fewer than two GPUs


def test_a_part_is_skipped_when_the_budget_left_is_too_small():
    budget = gpu_check.Budget(1.0)
    part = gpu_check.run_part("precision", lambda p: p.add("never", 1.0, "x"), estimate=60.0, budget=budget)
    assert part.status == gpu_check.SKIPPED and not part.figures


def test_a_failing_part_is_reported_and_the_check_goes_on():
    def broken(part: gpu_check.Part) -> None:
        part.add("measured_first", 2.0, "x")
        raise RuntimeError("no --nproc here")

    part = gpu_check.run_part("ddp", broken, estimate=0.0, budget=gpu_check.Budget(60.0))
    assert part.status == gpu_check.FAILED and "no --nproc here" in part.reason
    assert part.figures["measured_first"].value == 2.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "summary.json"
    done = run_script("--json", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["mode"] == gpu_check.NO_CUDA and summary["parts"] == []
