"""Reinforcement learning with RLlib: the environment, the PPO policy, its episodes and its ONNX graph.

Only a project baked with task=reinforcement has this family folder; family.py registers its config
section and its stages (rl/stages/: validate the environment, train PPO, evaluate episodes, export),
which the core's gate and register follow.
"""
