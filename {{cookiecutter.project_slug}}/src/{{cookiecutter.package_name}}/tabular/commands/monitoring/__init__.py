"""After deployment: the logged predictions of a window against the training run's reference (`monitor`)."""
