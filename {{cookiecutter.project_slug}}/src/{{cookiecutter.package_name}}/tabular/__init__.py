"""The tabular task family: models trained on a table."""
