"""Heads on top of the backbone's last hidden states."""

from __future__ import annotations

import torch
from torch import nn


class LatentActionHead(nn.Module):
    """Stage 1: predict the LAM's code index at each latent-action token position.

    Hidden states of the ``num_latent_tokens`` placeholder tokens -> logits
    (B, num_latent_tokens, codebook_size); trained with cross-entropy.
    """

    def __init__(self, hidden_size: int, codebook_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.proj = nn.Linear(hidden_size, codebook_size)

    def forward(self, latent_hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(latent_hidden))


class _DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(self.norm_q(queries), context, context, need_weights=False)
        queries = queries + attended
        return queries + self.mlp(self.norm_mlp(queries))


class ActionDecoder(nn.Module):
    """Stage 2 (FACTS section 8): ``chunk_size`` learnable queries attend (multi-head
    attention) over the backbone's vision and latent-action embeddings and regress a
    chunk of continuous actions (normalised space), trained with L1.

    Vision and latent embeddings get separate input projections plus a learned
    type embedding so the queries can tell them apart. With ``vision_positions`` > 0 each
    vision token also gets a learned position embedding (which camera, which cell): attention
    over the context is permutation-invariant, so without it the decoder knows what the
    cameras see but not where.
    """

    def __init__(self, hidden_size: int, chunk_size: int, action_dim: int, dim: int = 128, heads: int = 4, layers: int = 2,
                 state_dim: int = 0, vision_positions: int = 0):
        super().__init__()
        self.chunk_size = chunk_size
        self.action_dim = action_dim
        self.state_dim = state_dim
        self.vision_proj = nn.Linear(hidden_size, dim)
        self.latent_proj = nn.Linear(hidden_size, dim)
        # Proprioception (normalised robot state) enters as one more context token.
        self.state_proj = nn.Sequential(nn.Linear(state_dim, dim), nn.GELU(), nn.Linear(dim, dim)) if state_dim else None
        self.type_embed = nn.Parameter(torch.zeros(3, dim))
        self.vision_pos = nn.Parameter(torch.randn(vision_positions, dim) * 0.02) if vision_positions else None
        self.context_norm = nn.LayerNorm(dim)
        self.queries = nn.Parameter(torch.randn(chunk_size, dim) * 0.02)
        self.blocks = nn.ModuleList(_DecoderBlock(dim, heads) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, action_dim))

    def forward(self, vision_hidden: torch.Tensor, latent_hidden: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        vision = self.vision_proj(vision_hidden) + self.type_embed[0]
        if self.vision_pos is not None:
            if vision.shape[1] != self.vision_pos.shape[0]:
                raise ValueError(f"the action decoder got {vision.shape[1]} vision tokens but learned positions for "
                                 f"{self.vision_pos.shape[0]} (cameras x tokens per image): other cameras or image size?")
            vision = vision + self.vision_pos
        parts = [vision, self.latent_proj(latent_hidden) + self.type_embed[1]]
        if self.state_proj is not None:
            if state is None:
                raise ValueError(f"this action decoder needs the robot state ({self.state_dim} values)")
            parts.append(self.state_proj(state.to(vision_hidden.dtype)).unsqueeze(1) + self.type_embed[2])
        context = torch.cat(parts, dim=1)
        context = self.context_norm(context)
        queries = self.queries.unsqueeze(0).expand(context.shape[0], -1, -1)
        for block in self.blocks:
            queries = block(queries, context)
        return self.out(queries)  # (B, chunk_size, action_dim)
