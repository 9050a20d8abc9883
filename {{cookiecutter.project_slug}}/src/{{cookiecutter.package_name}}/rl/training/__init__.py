"""PPO's training run: a Ray runtime in this process, RLlib's checkpoint written to disk (ppo.py)."""
