"""The text a model learns from: sources, vocabulary, the encoded corpus and its cache, batches, downloads."""
