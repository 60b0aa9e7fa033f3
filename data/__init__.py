"""TrapLens data package."""
