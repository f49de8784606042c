"""voxgate: real-time voice authentication and its training toolkit."""

__version__ = "0.1.0"
