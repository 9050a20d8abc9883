"""The steps a training run composes besides fitting the model: tuned parameters (tuned.py, with Ray
Tune's search in tuning.py), a start from a trained base (transfer.py), differential privacy (privacy.py,
with DP-SGD for the PyTorch network in dp_sgd.py). stages/train.py calls them in order; each takes what
it needs and returns what it makes, so each is tested alone (the project's
tests/tabular/training/test_training_steps.py).
"""
