"""benchmarks/lam_experiment_table.py on a small study tree: per-condition and pooled paired differences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("ksg_bits", "ba_bits", "mine_bits", "probe_nmse", "view_probe_acc")


def write_eval(path: Path, values: dict[str, float]) -> None:
    path.mkdir(parents=True)
    rep = {"summary": {k: {"mean": v, "sd": 0.01} for k, v in values.items()},
           "action_dims": ["dx", "dy"], "excluded_action_dims": [], "eval_seeds": [0, 1], "probe_split": "episode"}
    (path / "eval.json").write_text(json.dumps(rep))


def test_pooled_differences_pair_models_by_condition_and_seed(tmp_path):
    rng = np.random.default_rng(0)
    # MVP: +0.1 bits KSG in every pair but one, view accuracy lower in all, on the OOD camera set only
    ksg_gain = {("camera", 0): 0.10, ("camera", 1): 0.12, ("camera", 2): -0.02,
                ("distractors", 0): 0.08, ("distractors", 1): 0.11, ("distractors", 2): 0.09}
    for (cond, seed), gain in ksg_gain.items():
        base = {k: float(rng.uniform(0.3, 0.9)) for k in KEYS}
        write_eval(tmp_path / "runs" / cond / "3v" / "single" / f"s{seed}" / "eval_ood_cams", base)
        write_eval(tmp_path / "runs" / cond / "3v" / "mvp_ac" / f"s{seed}" / "eval_ood_cams",
                   {**base, "ksg_bits": base["ksg_bits"] + gain, "view_probe_acc": base["view_probe_acc"] - 0.2})
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lam_experiment_table.py"), str(tmp_path)],
                   check=True, capture_output=True, text=True)
    res = json.loads((tmp_path / "results.json").read_text())
    pooled = res["pooled"]["eval_ood_cams"]["3v/mvp_ac-single"]
    assert pooled["conditions"] == ["camera", "distractors"]
    gains = list(ksg_gain.values())
    assert pooled["ksg_bits"]["n"] == 6
    assert pooled["ksg_bits"]["mean"] == pytest.approx(np.mean(gains))
    assert pooled["ksg_bits"]["predicted_direction"] == 5
    assert pooled["view_probe_acc"]["mean"] == pytest.approx(-0.2)
    assert pooled["view_probe_acc"]["predicted_direction"] == 6
    assert pooled["probe_nmse"]["mean"] == pytest.approx(0.0) and pooled["probe_nmse"]["predicted_direction"] == 0
    from scipy.stats import ttest_1samp

    assert pooled["ksg_bits"]["p"] == pytest.approx(ttest_1samp(gains, 0.0).pvalue)
    # no MVP models in this tree: no pooled MVP rows; the per-condition table still pairs by seed
    assert not any("/mvp-" in key for key in res["pooled"]["eval_ood_cams"])
    assert res["cells"]["camera/3v/mvp_ac"]["eval_ood_cams"]["minus_single"]["ksg_bits"]["mean"] == pytest.approx(
        np.mean([0.10, 0.12, -0.02]))
    assert "mvp_ac - single | camera, distractors | 6 |" in (tmp_path / "results.md").read_text()
