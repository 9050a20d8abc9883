"""Rows for a container's smoke test (ops/container.py): real rows of a table when there is one."""

from __future__ import annotations

from pathlib import Path

from ...serving import contract


def smoke_rows(schema: dict, sample: Path | None, config: Path, rows: int) -> list[dict] | None:
    """Rows of `sample` (default: the config's data file) read as the pipeline reads it (the config's CSV
    options, or Parquet), by the users' own column names, missing values as JSON null; None without a table."""
    from ...config import load
    from .. import config as configuration
    from . import data

    settings = None
    if config.is_file():
        loaded = load(config)
        if isinstance(loaded, configuration.Config):
            settings = loaded
            sample = sample or settings.data_path
    if sample is None or not sample.is_file():
        return None
    csv = settings.data.csv if settings else configuration.Csv.model_validate({})
    table = data.read_table(sample, csv).head(rows)
    kinds = {feature["name"]: feature["type"] for feature in schema["features"]}
    picked = table[list(kinds)].astype(object).where(table[list(kinds)].notna(), None)
    return [
        {
            name: None if value is None else float(value) if kinds[name] == contract.NUMBER else str(value)
            for name, value in row.items()
        }
        for row in picked.to_dict(orient="records")
    ]
