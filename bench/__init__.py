"""`make bench`: speed targets measured against a named baseline in the same run."""
