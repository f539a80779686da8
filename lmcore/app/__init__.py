"""lmcore.app: the only layer that imports streamlit; what the pages share."""
