"""Human-facing outputs of a prediction: the annotated video, the timeline plot, face pictures, and
``artifacts.write_artifacts``, which writes them all (with the result document) for the CLI and the worker."""
