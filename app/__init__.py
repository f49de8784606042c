"""voxgate.app."""
