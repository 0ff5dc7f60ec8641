"""Model: encoder registry, pooling, task heads and the multitask model."""
