"""TrapLens analysis package."""
