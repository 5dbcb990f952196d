"""Stage 1, the simulated data: harmonic sources, building wiring, spectrograms, the data set."""
