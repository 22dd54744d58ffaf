"""Around multiruns: results tables and sweep-level checks (Hydra callbacks)."""
