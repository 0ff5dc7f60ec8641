"""Training: task samplers, the loop, checkpoints."""
