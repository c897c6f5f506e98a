"""Neural network models of lam_ros (latent action models under ``models.lam``)."""
