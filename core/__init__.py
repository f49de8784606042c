"""voxgate.core."""
