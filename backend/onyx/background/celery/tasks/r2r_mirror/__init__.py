"""onyx-r2r: Onyx-side jobs of the R2R mirror (the backfill source)."""
