"""Data: readers with quarantine, the synthetic generator, tokenization and batching."""
