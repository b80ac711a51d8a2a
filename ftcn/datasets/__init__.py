"""Datasets: video sources, preprocessing into aligned clips, splits, and the training dataset."""
