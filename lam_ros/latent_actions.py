"""Online latent-action inference (ROS-free): load a LAM checkpoint once, then infer per frame pair.

Used by the ROS node and the policy::

    rt = LatentActionRuntime.from_checkpoint("runs/mvp/checkpoint", device="cpu")
    codes, emb = rt.infer({"third_person": img_t, "side": img_t2}, {"third_person": img_tk, "side": img_tk2})
    # codes: int64 (B, num_tokens); emb: float32 (B, num_tokens, code_dim); images uint8 (B, H, W, 3)

With several views, ``fusion="mean"`` (default) averages the views' pre-quantisation latents and
quantises the mean (cross-view training makes the views' latents interchangeable); ``"first"`` uses
the first view given only. Camera images of any size are accepted: they are resized to the model's
input exactly as training prepared them (``models.image_prep.resize_images``, the one shared path).
torch/models are imported lazily so importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.image_prep import resize_images


class LatentActionRuntime:
    """A loaded latent action model in eval mode, no gradients, reused across calls."""

    def __init__(self, model, device: str = "cpu", fusion: str = "mean"):
        import torch

        if fusion not in ("mean", "first"):
            raise ValueError(f"fusion must be 'mean' or 'first', got {fusion!r}")
        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.fusion = fusion
        self.config = model.cfg
        self.image_size = model.cfg.image_size

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", fusion: str = "mean",
                        backbone: str | None = None) -> LatentActionRuntime:
        from models.lam import load_lam

        return cls(load_lam(path, device=device, backbone=backbone), device=device, fusion=fusion)

    def _stack(self, frames_t: dict, frames_tk: dict):
        torch = self.torch
        if not frames_t:
            raise ValueError("no views given")
        if set(frames_t) != set(frames_tk):
            raise ValueError(f"views differ between t {sorted(frames_t)} and t+k {sorted(frames_tk)}")
        views = list(frames_t)
        if self.fusion == "first":
            views = views[:1]
        batch = None
        out = []
        for frames in (frames_t, frames_tk):
            per_view = []
            for v in views:
                img = frames[v].cpu().numpy() if torch.is_tensor(frames[v]) else np.asarray(frames[v])
                # Camera frames of any size -> the model's square input, by the one resize
                # training used (models.image_prep); bad dtype/shape raise a ValueError naming the view.
                x = torch.from_numpy(resize_images(img, self.image_size, name=f"view {v!r}"))
                if x.ndim == 3:
                    x = x[None]
                batch = x.shape[0] if batch is None else batch
                if x.shape[0] != batch:
                    raise ValueError(f"view {v!r} has batch {x.shape[0]}, others {batch}")
                per_view.append(x)
            out.append(torch.cat(per_view).to(self.device))  # (V*B, H, W, 3), view-major
        return out[0], out[1], len(views), batch

    def infer(self, frames_t: dict, frames_tk: dict) -> tuple[np.ndarray, np.ndarray]:
        """frames: {view: uint8 (B, H, W, 3)} at t and t+k -> (codes int64 (B, T), embeddings float32 (B, T, D))."""
        torch = self.torch
        x_t, x_tk, n_views, b = self._stack(frames_t, frames_tk)
        with torch.inference_mode():
            obs = self.model.observe(torch.cat([x_t, x_tk]))
            z_e = self.model.encode_continuous(obs[: len(x_t)], obs[len(x_t):])
            z_e = z_e.reshape(n_views, b, *z_e.shape[1:]).mean(0)
            q = self.model.quantizer
            codes = q.distances(z_e).argmin(-1)
            emb = q.lookup(codes)
        return codes.cpu().numpy().astype(np.int64), emb.float().cpu().numpy()

    def infer_views(self, frames_t: dict, frames_tk: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-view (codes, embeddings), without fusion (evaluation, leakage checks)."""
        return {v: LatentActionRuntime(self.model, str(self.device), "first").infer({v: frames_t[v]}, {v: frames_tk[v]})
                for v in frames_t}
