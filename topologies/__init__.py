"""Example topologies. Fraud detection comes first."""
