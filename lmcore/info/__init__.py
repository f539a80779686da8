"""lmcore.info."""
