"""Human-facing outputs of a prediction: the annotated video and the timeline plot."""
