"""Masked-LM further pre-training of the shared encoder on the tasks' own train text."""
