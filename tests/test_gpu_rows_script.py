"""benchmarks/gpu_rows.sh, the one prepared script for a lent GPU machine's 15 minutes: its SMOKE mode runs every
row end to end on the CPU with tiny stand-ins, so a broken row shows up here and not in the device's minutes."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_gpu_row_runs_end_to_end_and_writes_its_measurements(tmp_path):
    env = {**os.environ, "SMOKE": "1", "OUT": str(tmp_path), "PY": sys.executable}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_rows.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    log = (tmp_path / "gpu_rows.log").read_text()
    assert run.returncode == 0, log[-3000:]
    assert "failed rows: none" in log
    policy = json.loads((tmp_path / "policy_0.5b.json").read_text())
    assert policy["step_ms_p99"] >= policy["step_ms_p50"] > 0 and policy["actions_per_s_chunked_p99"] > 0
    finetune = json.loads((tmp_path / "finetune_0.5b.json").read_text())["results"]
    assert finetune["setup"]["mixed_precision"] == "bf16" and finetune["mask"]["steps_per_s"] > 0
    lam = json.loads((tmp_path / "lam_dinov2.json").read_text())
    assert lam["train_3views_steps_per_s"] > 0 and lam["infer_3views_batch1"]["p99_ms"] > 0
    pipeline = json.loads((tmp_path / "pipeline_gpu.json").read_text())
    assert pipeline["latent_pairs"] > 0 and pipeline["commands_sent"] > 0 and pipeline["latency_ms_p99"] > 0


def test_a_failing_row_is_reported_and_the_others_still_run(tmp_path):
    """A row that fails (here: the policy row, given a backbone preset that does not exist) is named in the log
    and the exit status, and the rows after it still run."""
    script = (ROOT / "benchmarks" / "gpu_rows.sh").read_text().replace(
        'DEV=cpu VLA=tiny', 'DEV=cpu VLA=no-such-preset', 1)
    broken = tmp_path / "gpu_rows.sh"
    broken.write_text(script.replace('cd "$(dirname "$0")/.."', f'cd "{ROOT}"', 1))
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "OUT": str(out), "PY": sys.executable}
    run = subprocess.run(["bash", str(broken)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = (out / "gpu_rows.log").read_text()
    assert run.returncode != 0
    assert "failed rows: policy (exit 1)" in log or "failed rows: policy (exit 2)" in log, log[-2000:]
    assert (out / "lam_dinov2.json").exists()
