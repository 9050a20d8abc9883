"""Where the project runs outside this machine: one folder per target, kept by the post-generation hook only
when cookiecutter chose it (`deploy_target`, `train_on`), deleted whole otherwise.

A target's folder holds everything it alone uses: its Python (a target with commands exports a COMMANDS
table, {name: (help, add_arguments, run)}, from its `__init__.py`, and the CLI adds them), its manifests or
specs, its scripts and its README. Its one CI file sits under .github/, named for it (a reusable workflow
`_<verb>-<target>.yml` or a local action `<verb>-<target>/`), and its tests under tests/targets/<target>/.
`smoke-request.json` here is the request every deploy target's smoke test sends.
"""
