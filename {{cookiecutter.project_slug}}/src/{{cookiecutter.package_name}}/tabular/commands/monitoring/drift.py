"""Drift of one column between the reference (the training run's test split) and the window.

Every column gets the population stability index (PSI: how far the shares moved, whatever the sample
size), numbers the two-sample Kolmogorov-Smirnov test and categories the chi-square test of
homogeneity (whether the move could be chance, given the sample sizes). A column drifted when both
say so: PSI alone flags noise in a small window, a p-value alone flags trivial moves in a large one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

# A share of zero makes the PSI infinite: an empty bin counts as this share instead.
FLOOR = 1e-4
MISSING = "(missing)"


@dataclass(frozen=True)
class Drift:
    column: str
    kind: Literal["number", "category"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    drifted: bool


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins: sum((a - e) * ln(a / e))."""
    expected = np.clip(np.asarray(expected, dtype=float), FLOOR, None)
    actual = np.clip(np.asarray(actual, dtype=float), FLOOR, None)
    expected, actual = expected / expected.sum(), actual / actual.sum()
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def number_bins(reference: pd.Series, bins: int) -> np.ndarray:
    """Inner edges at the reference's quantiles (equal shares of the reference in each bin)."""
    present = reference.dropna().to_numpy(dtype=float)
    return np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if present.size else np.array([])


def number_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    """Share of `values` per bin (right-closed bins between the edges), then the share missing."""
    numbers = values.to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    return np.append(counts, np.isnan(numbers).sum()) / max(numbers.size, 1)


def category_counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category over the categories either side has (a missing value is one)."""
    left, right = (values.astype(str).where(values.notna(), MISSING) for values in (reference, current))
    categories = sorted(set(left) | set(right))
    return (
        left.value_counts().reindex(categories, fill_value=0).to_numpy(),
        right.value_counts().reindex(categories, fill_value=0).to_numpy(),
    )


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (no continuity correction): (statistic, p)."""
    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category on both sides: nothing can have moved
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def number(column: str, reference: pd.Series, current: pd.Series, bins: int, psi_max: float, p_value: float) -> Drift:
    reference = pd.to_numeric(reference, errors="coerce")
    current = pd.to_numeric(current, errors="coerce")
    edges = number_bins(reference, bins)
    index = psi(number_shares(reference, edges), number_shares(current, edges))
    left, right = reference.dropna(), current.dropna()
    if left.empty or right.empty:
        statistic, p = (0.0, 1.0) if left.empty and right.empty else (1.0, 0.0)
    else:
        result = stats.ks_2samp(left.to_numpy(dtype=float), right.to_numpy(dtype=float))
        statistic, p = float(result.statistic), float(result.pvalue)
    return Drift(column, "number", index, "ks", statistic, p, index > psi_max and p < p_value)


def category(column: str, reference: pd.Series, current: pd.Series, psi_max: float, p_value: float) -> Drift:
    before, after = category_counts(reference, current)
    index = psi(before / max(before.sum(), 1), after / max(after.sum(), 1))
    statistic, p = chi_square(before, after)
    return Drift(column, "category", index, "chi2", statistic, p, index > psi_max and p < p_value)
