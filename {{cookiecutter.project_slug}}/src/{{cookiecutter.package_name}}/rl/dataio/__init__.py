"""What the reinforcement-learning family reads and writes: the trained policy's weights as a logged MLflow model."""
