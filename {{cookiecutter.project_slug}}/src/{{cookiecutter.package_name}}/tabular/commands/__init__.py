"""The tabular family's commands besides the stages (each module has a COMMANDS table the CLI reads)."""
