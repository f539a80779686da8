"""lmcore's home page: what the lab is, and the corpus every experiment will use."""

import streamlit as st

from lmcore.app.corpus_picker import corpus_picker
from lmcore.app.frame import page

lab = page(
    "lmcore: a language-model laboratory",
    "🧪",
    "Train tiny **n-gram** and **Transformer** language models on the built-in corpus or your "
    "own text, on a laptop CPU, in seconds to minutes. Every number the lab shows is measured "
    "and checked against a reference: KenLM for n-grams, naive float64 attention for the tiled "
    "FlashAttention kernel, exact round trips for compression.",
)

left, right = st.columns(2)
with left:
    st.markdown(
        """
**Pages**
1. **Corpus & tokenizers**: encoding detection and repair, char/byte/BPE/WordPiece/Unigram.
2. **N-gram models**: orders 1–6, MLE, add-k, Kneser-Ney (KenLM-exact); the trade-off in n.
3. **Transformer**: train a tiny GPT and watch loss, speed and memory live; generate.
4. **Objectives**: causal vs prefix vs masked LM on fair metrics.
5. **FlashAttention**: naive vs fused vs tiled attention, memory against sequence length.
6. **Long texts**: chunking, sliding windows, hierarchical summaries.
7. **Information**: entropy, cross-entropy, KL, Huffman and arithmetic coding; noisy
   channels, codes and Shannon's second theorem.
8. **Scaling & emergence**: scaling laws on your corpus, emergence as a metric effect,
   induction heads, few-shot learning and chain of thought, in miniature.
9. **Training stages**: pretraining, instruction tuning (SFT) and preference tuning (DPO)
   of one tiny model, and what each stage changes.
10. **Embeddings**: word2vec, a Transformer's token table, contextual vectors.
"""
    )
with right:
    corpus_picker(lab, key="home")
