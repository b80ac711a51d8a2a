"""FTCN+TT deepfake detection: models, checkpoints and (later) the face pipeline.

Importable without Flask, Celery, SQLAlchemy or boto3: the job service depends on this package, never the reverse.
"""

__version__ = "0.1.0"
