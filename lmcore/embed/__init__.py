"""Word vectors: word2vec trained here, a Transformer's token table, and contextual vectors."""
