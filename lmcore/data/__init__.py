"""lmcore.data."""
