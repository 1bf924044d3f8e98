"""Training machinery: the engine (D and B+S steps), checkpoints, logging, the learning-rate schedule."""
