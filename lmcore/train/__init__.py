"""lmcore.train."""
