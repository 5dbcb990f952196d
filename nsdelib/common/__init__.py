"""What every stage shares: validated configs, errors, seeded random streams, devices, the artifact store."""
