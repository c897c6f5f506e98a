"""Vector quantisers for latent actions: VQ-VAE (straight-through) and NSVQ.

Written here rather than taken from a library because the dead-code restart must
run for the whole of training (FACTS section 6: it collapses to one code
otherwise) and must stay identical on every process under Accelerate/DDP, which
the common VQ packages do not guarantee.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LatentQuantizer(nn.Module):
    """Quantise (B, T, D) vectors onto a codebook of ``num_codes`` x ``D``.

    ``kind="vq"``: nearest code, straight-through gradient, codebook + beta * commitment loss.
    ``kind="nsvq"``: noise substitution (training only): z + ||z - c|| * v / ||v||, v ~ N(0, I);
    no codebook loss, the codebook learns through the distance term.
    """

    def __init__(self, num_codes: int, dim: int, kind: str = "vq", commitment: float = 0.25,
                 usage_decay: float = 0.9, dead_code_threshold: float = 0.05, restart_every: int = 20):
        super().__init__()
        self.kind = kind
        self.num_codes = num_codes
        self.commitment = commitment
        self.usage_decay = usage_decay
        self.dead_code_threshold = dead_code_threshold
        self.restart_every = restart_every
        self.codebook = nn.Parameter(torch.randn(num_codes, dim) * dim**-0.5)
        self.register_buffer("usage", torch.full((num_codes,), 1.0 / num_codes))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distances (..., num_codes) from z (..., D) to every code."""
        flat = z.reshape(-1, z.shape[-1])
        d = (flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(-1))
        return d.reshape(*z.shape[:-1], self.num_codes)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        codes = self.distances(z).argmin(-1)
        c = self.lookup(codes)
        if self.kind == "vq":
            loss = F.mse_loss(c, z.detach()) + self.commitment * F.mse_loss(z, c.detach())
            z_q = z + (c - z).detach()
        elif self.training:
            noise = torch.randn_like(z)
            err = (z - c).norm(dim=-1, keepdim=True)
            z_q = z + err * noise / noise.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            loss = z.new_zeros(())
        else:
            z_q, loss = c, z.new_zeros(())
        if self.training:
            self._track_and_restart(z.detach(), codes)
        return {"z_q": z_q, "codes": codes, "loss": loss}

    @torch.no_grad()
    def _track_and_restart(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        hist = torch.bincount(codes.reshape(-1), minlength=self.num_codes).float()
        hist = _all_reduce_sum(hist)
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * hist / hist.sum().clamp_min(1))
        self.steps += 1
        if self.restart_every <= 0 or int(self.steps) % self.restart_every:
            return
        dead = self.usage < self.dead_code_threshold / self.num_codes
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        flat = z.reshape(-1, z.shape[-1])
        pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
        fresh = flat[pick] + 0.01 * flat.std() * torch.randn_like(flat[pick])
        self.codebook.data[dead] = fresh
        self.usage[dead] = 1.0 / self.num_codes
        self.restarts += n_dead
        _broadcast_from_rank0(self.codebook.data, self.usage)

    def usage_fraction(self) -> float:
        """Fraction of codes whose usage EMA is above the dead threshold."""
        return float((self.usage >= self.dead_code_threshold / self.num_codes).float().mean())


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _dist_ready():
        torch.distributed.all_reduce(t)
    return t


def _broadcast_from_rank0(*tensors: torch.Tensor) -> None:
    """Keep the restarted codebook identical on every process (restarts pick local batch vectors)."""
    if _dist_ready():
        for t in tensors:
            torch.distributed.broadcast(t, 0)
