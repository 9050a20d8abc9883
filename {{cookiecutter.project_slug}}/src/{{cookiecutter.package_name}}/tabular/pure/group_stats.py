"""Group sizes and label rates of the training rows with differential privacy (OpenDP), to share outside the team.

For each sensitive feature, the rows are counted per (group, label) cell, every cell at once, and
each count gets discrete Laplace noise (OpenDP's count-by-categories then Laplace measurement). Adding
or removing one row changes one cell by one, so one feature's table costs its share of
`privacy.report_epsilon`; the features' tables compose, so the shares add up to it. Group sizes and
rates are computed from the noisy counts afterwards, which costs nothing more.

The groups and labels counted are the ones config.yaml declares (data.columns.<name>.values), never
ones read from the rows: which groups exist in the data would itself be a disclosure. Rows outside
them (missing or undeclared values) are counted together as OTHER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...errors import UsageError
from ..config import Config

if TYPE_CHECKING:  # the schema's type only: pure/ imports nothing that reads or writes
    from ..dataio.data import Schema

OTHER = "(other)"


def declared(config: Config, column: str) -> list:
    described = config.data.columns.get(column)
    if described is None or not described.values:
        raise UsageError(
            f"privacy.report_epsilon: data.columns.{column}.values is not declared in config.yaml; the DP group "
            "statistics count only declared values (values read from the data would disclose which exist). "
            f"List them under data.columns.{column}.values, or remove privacy.report_epsilon"
        )
    return list(described.values)


def release(config: Config, rows: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The noisy statistics as JSON-ready data (only noisy values: this is what may be shared)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")  # OpenDP's vetted-by-contributors mechanisms, which these are
    epsilon = config.privacy.report_epsilon
    if epsilon is None:
        raise UsageError("privacy.report_epsilon is not set: no DP statistics to compute")
    features = [name for name in schema.sensitive if name in rows.columns]
    if not features:
        raise UsageError("privacy.report_epsilon: data.sensitive_features is empty, so there are no groups to report")
    labels = [None] if schema.task == "regression" else declared(config, schema.target)
    share = epsilon / len(features)
    report: dict[str, Any] = {
        "epsilon": epsilon,
        "delta": 0.0,
        "neighbouring": "one training row added or removed",
        "mechanism": f"discrete Laplace on counts per (group, label), OpenDP {dp.__version__}",
        "rows": "the training split (test rows excluded)",
        "features": {},
    }
    for feature in features:
        groups = declared(config, feature)
        cells = [(group, label) for group in groups for label in labels]
        measurement, scale = _noisy_counts(dp, len(cells), share)
        noisy = np.clip(np.asarray(measurement(_cell_of_each_row(rows, feature, schema, groups, labels))), 0, None)
        report["features"][feature] = {
            "epsilon": share,
            "noise_scale": scale,
            "groups": {
                **{
                    str(group): _group(noisy[index * len(labels) : (index + 1) * len(labels)], labels)
                    for index, group in enumerate(groups)
                },
                OTHER: {"rows": int(noisy[-1])},
            },
        }
    return report


def _noisy_counts(dp: Any, categories: int, epsilon: float) -> tuple[Any, float]:
    """Rows (as cell numbers) -> one noisy count per cell and one for the rest, spending `epsilon`."""
    space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()
    counts = space >> dp.t.then_count_by_categories(categories=[str(i) for i in range(categories)], null_category=True)
    scale = dp.binary_search_param(lambda s: counts >> dp.m.then_laplace(scale=s), d_in=1, d_out=epsilon)
    measurement = counts >> dp.m.then_laplace(scale=scale)
    assert measurement.map(1) <= epsilon  # OpenDP's own accounting of what one row can change
    return measurement, float(scale)


def _cell_of_each_row(rows: pd.DataFrame, feature: str, schema: Schema, groups: list, labels: list) -> list[str]:
    """Each row's cell number as text, or "" (OTHER) when its group or label is not a declared one."""
    group_index = _index(rows[feature], groups)
    label_index = np.zeros(len(rows), dtype=np.int64) if labels == [None] else _index(rows[schema.target], labels)
    known = (group_index >= 0) & (label_index >= 0)
    cells = group_index * len(labels) + label_index
    return [str(cell) if ok else "" for cell, ok in zip(cells.tolist(), known.tolist(), strict=True)]


def _index(column: pd.Series, values: list) -> np.ndarray:
    # Compared value by value (1 == 1.0 for a number column read as float), not as text.
    index = np.full(len(column), -1, dtype=np.int64)
    for position, value in enumerate(values):
        index[(column == value).fillna(False).to_numpy(dtype=bool)] = position
    return index


def _group(counts: np.ndarray, labels: list) -> dict[str, Any]:
    rows = int(counts.sum())
    if labels == [None]:
        return {"rows": rows}
    return {
        "rows": rows,
        "label_counts": {str(label): int(count) for label, count in zip(labels, counts, strict=True)},
        "label_rates": {
            str(label): (float(count) / rows if rows else None) for label, count in zip(labels, counts, strict=True)
        },
    }
