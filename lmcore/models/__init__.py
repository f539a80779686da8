"""lmcore.models."""
