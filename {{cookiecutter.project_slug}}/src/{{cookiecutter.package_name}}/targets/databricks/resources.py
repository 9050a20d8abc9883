"""The bundle's resources in Python: `databricks bundle deploy` calls `load_resources` (databricks.yml names it).

It imports databricks-bundles, which only the training workflow installs (_train-databricks.yml): nothing in
the package imports this module.
"""

from databricks.bundles.core import Bundle, Resources

from .train_job import experiment, train_job


def load_resources(bundle: Bundle) -> Resources:
    resources = Resources()
    resources.add_job("train", train_job(bundle.target))
    if bundle.target == "prod":
        # Development mode prefixes a declared experiment's name ("[dev <name>] ..."), which would no
        # longer be config.yaml's: in dev the stages create the experiment themselves, on first use.
        resources.add_mlflow_experiment("experiment", experiment())
    return resources
