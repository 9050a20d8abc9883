"""Training on Databricks: the Asset Bundle's job (resources.py, train_job.py; the bundle itself is
databricks.yml at the project root, where the Databricks CLI looks for it), what each of its tasks runs
(job.py) and the `databricks-run-id` command the training workflow reads the run id back with.
See README.md here.
"""

from .job import COMMANDS

__all__ = ["COMMANDS"]
