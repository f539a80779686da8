"""lmcore.runs."""
