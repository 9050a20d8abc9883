"""Pure computation of the tabular family: no files, no network, no tracking server (unit-tested alone)."""
