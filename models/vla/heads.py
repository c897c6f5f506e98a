"""Heads on top of the backbone's last hidden states."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def few_query_cross_attention(attn: nn.MultiheadAttention, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``attn(queries, context, context)`` of a batch-first ``nn.MultiheadAttention`` (no masks, no dropout, no
    weights returned), computed for few queries over a long context: the same function at a third of the cost.

    The module projects every context token to keys and values (2 x dim x dim per token) for only a handful of
    queries: for the action decoder's 5 queries over 133 context tokens (dim 128, batch 32, one CPU thread), one
    block's forward + backward took 44 ms, and 15 ms this way. Moved to the query side, the projections become per-head matrix products on the
    few queries: per head h, q_h . (W_k,h c + b_k,h) = (W_k,h^T q_h) . c + (q_h . b_k,h), whose last term is the
    same for every context token and cancels in the softmax; and sum_j a_j (W_v,h c_j + b_v,h) =
    W_v,h (sum_j a_j c_j) + b_v,h since the weights a_j sum to 1. The module's parameters are used as they are, so
    checkpoints load unchanged; results equal the module's to float rounding (tests/test_vla_model.py).
    PyTorch's attention kernels all project the keys first, hence this function."""
    if attn.dropout and attn.training:
        raise ValueError("few_query_cross_attention has no attention dropout; this module sets dropout > 0")
    batch, n_queries, dim = queries.shape
    heads = attn.num_heads
    head_dim = dim // heads
    w_q, w_k, w_v = attn.in_proj_weight.split(dim)
    b_q, _, b_v = attn.in_proj_bias.split(dim)
    q = F.linear(queries, w_q, b_q).view(batch, n_queries, heads, head_dim)
    # queries moved into the context's space, one per head: (B, heads, Q, dim)
    q_ctx = torch.einsum("bqhe,hed->bhqd", q, w_k.view(heads, head_dim, dim)).reshape(batch, heads * n_queries, dim)
    weights = torch.softmax(torch.bmm(q_ctx * head_dim ** -0.5, context.transpose(1, 2)), dim=-1)  # (B, heads*Q, N)
    pooled = torch.bmm(weights, context).view(batch, heads, n_queries, dim)  # attention-weighted mean context per head
    values = torch.einsum("bhqd,hed->bqhe", pooled, w_v.view(heads, head_dim, dim)) + b_v.view(heads, head_dim)
    return attn.out_proj(values.reshape(batch, n_queries, dim))


class _DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        attended = few_query_cross_attention(self.attn, self.norm_q(queries), context)
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
