"""multitask-bert-pipeline: fine-tune one BERT-family encoder on several sentence tasks at once.

The package holds all logic; the DVC stages in ``stages/`` only wire params and paths to it.
"""

__version__ = "0.1.0"
