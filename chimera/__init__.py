"""Chimera: a CS2 copilot and the pipeline that teaches VLMs the game."""
__version__ = "0.1.0"
