"""What runs around the pipeline: the registry as a release uses it, GitHub Actions glue, the serving image.

Each module has a COMMANDS table, {name: (help, add_arguments, run)}, that the CLI turns into
subcommands; `run(args)` raises errors.UsageError or errors.CheckFailed when it cannot do its job.
"""
