"""Data-selection methods of the training workload (tasks/training): one file per method."""
