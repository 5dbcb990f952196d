"""One module per claim of the paper (C1-C5): its settings, measurement, verdict and record."""
