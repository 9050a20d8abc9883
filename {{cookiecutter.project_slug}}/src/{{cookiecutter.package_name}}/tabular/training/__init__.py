"""What a training run uses besides fitting the model: Ray Tune's search (tuning.py), a start from a
trained base (transfer.py), DP-SGD for the PyTorch network (dp_sgd.py)."""

from __future__ import annotations

# The modules of this folder that one framework alone uses (as frameworks.MODULES); a plain literal:
# hooks/post_gen_project.py reads it without importing the package and deletes the other frameworks'.
MODULES: dict[str, tuple[str, ...]] = {"pytorch": ("dp_sgd",)}
