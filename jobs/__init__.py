"""Placeholder package; filled in by the job-service issue."""
