"""Watching the log: Sigma-form rules and correlations over entries as they are appended,
enriched with context the organisation supplies, raising alerts that are themselves
entries in the log."""
