"""The bundled sample data: a synthetic credit book with a measurable, documented bias.

The generator is part of the project so the data's provenance is code, not a story: the same seed
gives byte-identical files (`python -m {{ cookiecutter.package_name }} sample-data` rewrites them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 5000
SEED = 7
PROJECT_TASK = "{{ cookiecutter.task }}"  # the only data file this project keeps (post_gen_project.py)
TARGETS = {"binary": "approved", "multiclass": "risk_grade", "regression": "interest_rate"}

EMPLOYMENT = ["salaried", "self_employed", "unemployed", "retired"]
PURPOSE = ["car", "home", "education", "business", "personal"]
AGE_GROUPS = [(18, 25, "18-25"), (26, 40, "26-40"), (41, 60, "41-60"), (61, 200, "61+")]

# The historical decisions this data imitates penalised women and the young regardless of
# repayment capacity; the model learns it, and the fairness gate is there to measure it.
SEX_PENALTY = 0.7
YOUNG_PENALTY = 0.4


def generate(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    """All features plus the three targets; `write` splits them into one file per task."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 76, rows)
    sex = rng.choice(["female", "male"], rows)
    employment = rng.choice(EMPLOYMENT, rows, p=[0.62, 0.2, 0.08, 0.1])
    purpose = rng.choice(PURPOSE, rows, p=[0.3, 0.25, 0.1, 0.15, 0.2])
    income = np.round(rng.lognormal(10.6, 0.45, rows) * np.where(employment == "unemployed", 0.35, 1.0), 2)
    loan_amount = np.round(rng.lognormal(9.3, 0.7, rows), 2)
    loan_term = rng.choice([12, 24, 36, 48, 60], rows)
    history = np.clip(np.round(rng.normal((age - 18) * 0.45, 3.0, rows), 1), 0, None)
    existing_debt = np.round(rng.exponential(0.25, rows) * income, 2)

    capacity = (
        np.log(income)
        - np.log(loan_amount) * 0.8
        - existing_debt / income * 1.5
        + history * 0.05
        - (employment == "unemployed") * 1.2
        - (loan_term / 60) * 0.3
    )
    bias = -SEX_PENALTY * (sex == "female") - YOUNG_PENALTY * (age <= 25)
    score = capacity - np.median(capacity) + 0.7 + bias + rng.normal(0, 0.6, rows)

    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "loan_amount": loan_amount,
            "loan_term_months": loan_term,
            "credit_history_years": history,
            "existing_debt": existing_debt,
            "employment": employment,
            "purpose": purpose,
            "sex": sex,
            "age_group": [next(label for low, high, label in AGE_GROUPS if low <= a <= high) for a in age],
        }
    )
    frame["approved"] = (score > 0).astype(int)
    frame["risk_grade"] = np.digitize(-score, np.quantile(-score, [0.5, 0.8]))
    frame["interest_rate"] = np.round(np.clip(9.0 - 2.2 * score + rng.normal(0, 0.5, rows), 2.5, 25.0), 3)
    return frame


def write(folder: Path, tasks: list[str] | None = None) -> list[Path]:
    """Write data/credit_<task>.csv for each task (default: this project's); returns the paths written."""
    frame = generate()
    written = []
    for task in tasks or [PROJECT_TASK]:
        others = [t for name, t in TARGETS.items() if name != task]
        path = folder / f"credit_{task}.csv"
        frame.drop(columns=others).to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written
