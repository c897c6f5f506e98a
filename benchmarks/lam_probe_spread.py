# Follow-up of docs/lam_experiment.md: linear-probe NMSE of the main-run checkpoints over 10 random splits.
# Usage: PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lam_probe_spread.py single mvp mvp_ac
import sys, json, numpy as np, torch
torch.set_num_threads(1)
from models.lam import load_lam
from training.lam_data import load_episodes, split_episodes
from training.eval_lam import encode_pairs
from training import lam_metrics as M
import glob
ds = sorted(glob.glob("outputs/lam_experiment/data/*"))
out = {}
eps = None
for m in sys.argv[1:]:
    model = load_lam(f"outputs/lam_experiment/{m}/checkpoint").eval()
    if eps is None:
        eps = split_episodes(load_episodes(ds, ["third_person", "side"], 64), 0.25)[1]
    g = model.cfg.frame_gap
    idx = [(e, t) for e, ep in enumerate(eps) for t in range(len(ep) - g)]
    net = M.net_actions(np.stack([eps[e].actions[t:t+g] for e, t in idx]))
    for v in ["third_person", "side"]:
        z, _ = encode_pairs(model, np.stack([eps[e].frames[v][t] for e, t in idx]), np.stack([eps[e].frames[v][t+g] for e, t in idx]))
        r = [M.linear_probe_nmse(z, net, seed=s) for s in range(10)]
        nm = np.array([x["nmse"] for x in r]); pd = np.array([x["nmse_per_dim"] for x in r])
        out[f"{m}/{v}"] = {"nmse_mean": nm.mean(), "nmse_sd": nm.std(), "per_dim_mean": pd.mean(0).round(2).tolist(), "per_dim_sd": pd.std(0).round(2).tolist()}
        print(m, v, f"NMSE over 10 splits {nm.mean():.3f} +- {nm.std():.3f}", "per-dim mean", pd.mean(0).round(2), "sd", pd.std(0).round(2), flush=True)
# target distribution
print("net-action kurtosis per dim", (((net - net.mean(0))**4).mean(0) / net.var(0)**2).round(1))
json.dump(out, open("outputs/probe_spread.json", "w"), indent=1)
