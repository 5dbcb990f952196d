"""Stage 4, the evaluations: input noise, adversarial attacks, attributions and ABC."""
