"""TrapLens dashboard package."""
