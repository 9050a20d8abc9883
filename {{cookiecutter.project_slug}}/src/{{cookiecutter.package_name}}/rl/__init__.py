"""Reinforcement learning with RLlib: the environment, the PPO policy, its episodes and its ONNX graph.

Only a project baked with task=reinforcement has this package. Its stage modules (rl/stages/) take
the place of the tabular ones in stages/ when the project is generated, so every stage keeps its
name and meaning: validate the environment, train PPO, evaluate episodes, gate, export, register.
"""
