"""Evaluation plots, written as PNG files for the run's artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display on CI runners or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

from ..config import Task  # noqa: E402
from ..pure.predictions import Predictions, ValuePredictions  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def draw(
    task: Task,
    y_true: np.ndarray,
    predicted: Predictions,
    classes: list,
    by_group: dict[str, pd.DataFrame],
    folder: Path,
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if isinstance(predicted, ValuePredictions):
        figure, axes = plt.subplots(figsize=(5, 4))
        axes.scatter(predicted.values, y_true - predicted.values, s=4, alpha=0.5)
        axes.axhline(0, color="grey", linewidth=1)
        axes.set(xlabel="predicted", ylabel="residual (true - predicted)", title="Residuals")
        written.append(_save(figure, folder / "residuals.png"))
    else:
        if task == "binary":
            figure, axes = plt.subplots(figsize=(5, 4))
            RocCurveDisplay.from_predictions(y_true, predicted.probabilities[:, 1], pos_label=classes[1], ax=axes)
            written.append(_save(figure, folder / "roc_curve.png"))
        figure, axes = plt.subplots(figsize=(5, 4))
        ConfusionMatrixDisplay.from_predictions(y_true, predicted.labels, labels=classes, ax=axes, colorbar=False)
        written.append(_save(figure, folder / "confusion_matrix.png"))
    for feature, table in by_group.items():
        axes = table.plot.bar(
            subplots=True, layout=(1, len(table.columns)), figsize=(3 * len(table.columns), 3), legend=False, rot=0
        )
        written.append(_save(axes.flat[0].figure, folder / f"by_group_{feature}.png"))
    return written


def importance(shares: dict[str, float], highlighted: list[str], method: str, path: Path) -> Path:
    """Each column's share of total importance, largest on top; the sensitive features in another colour."""
    names = sorted(shares, key=lambda name: shares[name])
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    colours = ["tab:red" if name in highlighted else "tab:blue" for name in names]
    axes.barh(names, [shares[name] for name in names], color=colours)
    axes.set(xlabel="share of total importance (mean |SHAP value|)", title="Global feature importance")
    figure.text(0.01, 0.01, method[:110], fontsize=6, color="grey")
    return _save(figure, path)
