"""Synthetic labelled real/fake videos (see generate.py)."""
