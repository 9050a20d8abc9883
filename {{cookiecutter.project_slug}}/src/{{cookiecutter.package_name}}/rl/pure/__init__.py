"""Pure computation of the reinforcement-learning family: no files, no network, no tracking server (unit-tested
alone). The environment and its episodes run in this process; the policy network is RLlib's torch module."""
