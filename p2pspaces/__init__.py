"""p2pspaces: serverless audio rooms for a local network."""

__version__ = "0.1.0"
