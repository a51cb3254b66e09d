"""Re-runs a tape in a sandbox, normalises, diffs two recordings, extracts one step."""
