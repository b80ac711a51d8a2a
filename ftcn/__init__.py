"""FTCN+TT deepfake detection: the models and their checkpoints, the face pipeline, prediction, training, datasets
and the command line.

Importable without Flask, Celery, SQLAlchemy or boto3: the job service depends on this package, never the reverse.
"""

__version__ = "0.1.0"
