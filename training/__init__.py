"""TrapLens training package."""
