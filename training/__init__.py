"""voxgate.training."""
