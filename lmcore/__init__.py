"""lmcore: a language-model laboratory for a laptop CPU."""

__version__ = "0.1.0"
