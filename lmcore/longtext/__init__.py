"""Long texts through a short-context model.

- `chunking`: LangChain's recursive splitter in characters or tokens, exact offsets.
- `strategies`: truncation, disjoint chunks, sliding window, one full tiled pass; bits/char,
  time and memory, per-window callbacks, a stride sweep.
- `summarize`: map-reduce summary tree; offline extractive scorer (model surprisal +
  TF-IDF centrality − MMR redundancy) or an OpenAI-compatible chat endpoint.
- `rouge`: ROUGE-1/2/L with a tokenizer that works for Chinese.
- `continuation`: continue a text from its last window (partial processing).
- `quick_model`: a tiny Transformer trained in seconds when a session has none.
"""
