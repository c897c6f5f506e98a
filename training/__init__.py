"""Training and evaluation of lam_ros models (latent action models first)."""
