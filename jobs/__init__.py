"""Job records, their lifecycle, storage and settings: shared by the API and the worker.

Depends on nothing heavier than SQLAlchemy (no torch), so the API process stays small.
"""
