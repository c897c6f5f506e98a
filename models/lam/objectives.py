"""Training objectives as weighted loss terms (FACTS section 6).

- self:  reconstruct o_t+k of view v from (o_t of v, z of v); plus the quantiser loss.
- cross: reconstruct o_t+k of view w from (o_t of w, z of v), every ordered pair v != w (MVP-LAM).
- ac:    reconstruct o_k from (o_i, z_ij + z_jk) on post-quantisation embeddings (AC-LAM).
- cycle: decode with a latent from a buffer of recent batches, re-encode, and require the
         same code (cross-entropy on the code index; the adversarial part is not implemented).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import LatentActionModel


class LatentBuffer:
    """FIFO of recent (z_q, codes) for the cycle-consistency term."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.z: torch.Tensor | None = None
        self.codes: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.z is None else self.z.shape[0]

    def push(self, z_q: torch.Tensor, codes: torch.Tensor) -> None:
        z_q, codes = z_q.detach(), codes.detach()
        self.z = z_q if self.z is None else torch.cat([self.z, z_q])[-self.capacity:]
        self.codes = codes if self.codes is None else torch.cat([self.codes, codes])[-self.capacity:]

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self), (n,), device=self.z.device)
        return self.z[idx], self.codes[idx]


def compute_losses(model: LatentActionModel, frames: torch.Tensor, weights: dict[str, float],
                   buffer: LatentBuffer | None = None) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """frames: uint8 (B, V, T, H, W, 3) with T = 2 (pairs) or 3 (triples i, j, k).

    Returns (total loss, {term: value}, codes (B, V, num_tokens) of the (t, t+k) transitions).
    """
    if frames.ndim != 6:
        raise ValueError(f"frames must be (B, V, T, H, W, 3), got shape {tuple(frames.shape)}")
    b, v, t = frames.shape[:3]
    obs = model.observe(frames.flatten(0, 2))
    obs = obs.reshape(b, v, t, *obs.shape[1:])
    enc = model.encode(obs[:, :, 0].flatten(0, 1), obs[:, :, 1].flatten(0, 1))
    z_q = enc["z_q"].reshape(b, v, *enc["z_q"].shape[1:])
    terms: dict[str, torch.Tensor] = {"vq": enc["loss"]}

    pairs = [(w, u) for w in range(v) for u in range(v) if w == u or weights.get("cross", 0) > 0]
    pred = model.decode(torch.cat([obs[:, w, 0] for w, _ in pairs]), torch.cat([z_q[:, u] for _, u in pairs]))
    err = (pred - torch.cat([obs[:, w, 1] for w, _ in pairs])).pow(2).mean(dim=(1, 2)).reshape(len(pairs), b)
    is_self = torch.tensor([w == u for w, u in pairs], device=err.device)
    terms["self"] = err[is_self].mean()
    if (~is_self).any():
        terms["cross"] = err[~is_self].mean()

    if weights.get("ac", 0) > 0:
        if t < 3:
            raise ValueError("the 'ac' objective needs frame triples (T=3)")
        enc_jk = model.encode(obs[:, :, 1].flatten(0, 1), obs[:, :, 2].flatten(0, 1))
        pred_ik = model.decode(obs[:, :, 0].flatten(0, 1), enc["z_q"] + enc_jk["z_q"])
        terms["ac"] = F.mse_loss(pred_ik, obs[:, :, 2].flatten(0, 1))
        terms["vq"] = 0.5 * (terms["vq"] + enc_jk["loss"])

    if weights.get("cycle", 0) > 0 and buffer is not None:
        if len(buffer) > 0:
            z_buf, codes_buf = buffer.sample(b * v)
            obs_t = obs[:, :, 0].flatten(0, 1)
            fake = model.decode(obs_t, z_buf)
            logits = model.code_logits(model.encode_continuous(obs_t, fake))
            terms["cycle"] = F.cross_entropy(logits.flatten(0, 1), codes_buf.flatten())
        buffer.push(enc["z_q"], enc["codes"])

    w_self = weights.get("self", 0.0)
    total = (w_self if w_self > 0 else 1.0) * terms["vq"]
    for name, value in terms.items():
        if name != "vq":
            total = total + weights.get(name, 0.0) * value
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite LAM loss: { {k: float(x) for k, x in terms.items()} }")
    return total, {k: float(x.detach()) for k, x in terms.items()}, enc["codes"].reshape(b, v, -1)
