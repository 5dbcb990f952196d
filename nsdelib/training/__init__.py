"""Stage 3, training: the resumable, cached training loop and the clean-accuracy metrics."""
