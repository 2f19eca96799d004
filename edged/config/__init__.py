"""The config engine: schema rules, loading, positions, the example file, the root."""
