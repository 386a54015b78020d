"""Training workload: time to accuracy of a small CNN on scikit-learn digits under a fixed budget of
rounds; methods (``methods/training/``) choose each round's training data (full data, static subsets,
RS2)."""

from tasks.training import time_to_accuracy  # noqa: F401  (importing registers the task and metrics)
