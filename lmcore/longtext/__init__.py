"""lmcore.longtext."""
