"""Latent action model: inverse dynamics encoder + quantiser + forward dynamics decoder.

Follows the UniVLA / MVP-LAM design (FACTS section 6): learned query tokens are
prepended to both frames' tokens, spatio-temporal blocks (spatial attention within
a frame, causal temporal attention across frames) mix them, the latent is read from
the query tokens of the second frame and projected to the code dimension, then
quantised. The decoder attends over [tokens of frame t, projected latent tokens]
and predicts the observation tokens of frame t+k.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import LAMConfig
from .features import FrozenBackbone, PixelPatches, PretrainedTrunkCells
from .quantizer import LatentQuantizer


def _layer(cfg: LAMConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        cfg.hidden_dim, cfg.num_heads, cfg.hidden_dim * cfg.mlp_ratio, dropout=0.0,
        activation="gelu", batch_first=True, norm_first=True,
    )


class SpatioTemporalBlock(nn.Module):
    """Spatial attention per frame, then causal temporal attention per token position."""

    def __init__(self, cfg: LAMConfig):
        super().__init__()
        self.spatial = _layer(cfg)
        self.temporal = _layer(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, N, D)
        b, t, n, d = x.shape
        x = self.spatial(x.reshape(b * t, n, d)).reshape(b, t, n, d)
        xt = x.transpose(1, 2).reshape(b * n, t, d)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=x.device, dtype=x.dtype)
        xt = self.temporal(xt, src_mask=mask, is_causal=True)
        return xt.reshape(b, n, t, d).transpose(1, 2)


class LatentActionModel(nn.Module):
    """Encode (o_t, o_t+k) into ``num_tokens`` quantised latent tokens; decode o_t+k from (o_t, z)."""

    def __init__(self, cfg: LAMConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.feature_source == "dinov2":
            self.observer = FrozenBackbone(cfg.backbone, cfg.image_size)
        elif cfg.feature_source == "effnet":
            self.observer = PretrainedTrunkCells(cfg.image_size)
        else:
            self.observer = PixelPatches(cfg.image_size, cfg.patch_size)
        n, d_obs, d = self.observer.num_patches, self.observer.dim, cfg.hidden_dim
        self.num_patches, self.obs_dim = n, d_obs
        # Encoder.
        self.enc_in = nn.Linear(d_obs, d)  # the learned patch embedding for feature_source="patch"
        self.enc_pos = nn.Parameter(torch.randn(1, 1, cfg.num_tokens + n, d) * 0.02)
        self.enc_time = nn.Parameter(torch.randn(1, 2, 1, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, 1, cfg.num_tokens, d) * 0.02)
        self.enc_blocks = nn.ModuleList(SpatioTemporalBlock(cfg) for _ in range(cfg.encoder_depth))
        self.enc_norm = nn.LayerNorm(d)
        self.to_code = nn.Linear(d, cfg.code_dim)
        self.quantizer = LatentQuantizer(
            cfg.num_codes, cfg.code_dim, cfg.quantizer, cfg.commitment, cfg.usage_decay,
            cfg.dead_code_threshold, cfg.restart_every,
        )
        # Decoder.
        self.dec_in = nn.Linear(d_obs, d)
        self.dec_z = nn.Linear(cfg.code_dim, d)
        self.dec_pos = nn.Parameter(torch.randn(1, n + cfg.num_tokens, d) * 0.02)
        self.dec_blocks = nn.TransformerEncoder(_layer(cfg), cfg.decoder_depth, enable_nested_tensor=False)
        self.dec_norm = nn.LayerNorm(d)
        self.dec_out = nn.Linear(d, d_obs)

    # -- observation tokens --------------------------------------------------------------
    def observe(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, H, W, 3) -> observation tokens (B, N, obs_dim) (the reconstruction target)."""
        return self.observer(images)

    # -- inverse dynamics ----------------------------------------------------------------
    def encode_continuous(self, obs_t: torch.Tensor, obs_tk: torch.Tensor) -> torch.Tensor:
        """(B, N, obs_dim) x 2 -> pre-quantisation latent (B, num_tokens, code_dim)."""
        x = self.enc_in(torch.stack([obs_t, obs_tk], dim=1))  # (B, 2, N, D)
        q = self.queries.expand(x.shape[0], 2, -1, -1)
        x = torch.cat([q, x], dim=2) + self.enc_pos + self.enc_time
        for block in self.enc_blocks:
            x = block(x)
        return self.to_code(self.enc_norm(x[:, 1, : self.cfg.num_tokens]))

    def encode(self, obs_t: torch.Tensor, obs_tk: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns z_e, z_q (B, T, code_dim), codes (B, T) and the quantiser loss."""
        z_e = self.encode_continuous(obs_t, obs_tk)
        out = self.quantizer(z_e)
        out["z_e"] = z_e
        return out

    # -- forward dynamics ----------------------------------------------------------------
    def decode(self, obs_t: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
        """Predict the observation tokens of frame t+k from frame t's tokens and a latent."""
        x = torch.cat([self.dec_in(obs_t), self.dec_z(z_q)], dim=1) + self.dec_pos
        x = self.dec_norm(self.dec_blocks(x))
        return self.dec_out(x[:, : self.num_patches])

    def code_logits(self, z_e: torch.Tensor) -> torch.Tensor:
        """Negative squared distances to the codes: logits for the cycle-consistency cross-entropy."""
        return -self.quantizer.distances(z_e)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights to save: everything except the frozen backbone (it is reloaded from cfg.backbone)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("observer.")}
