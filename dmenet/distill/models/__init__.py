"""Distill-DBDGAN networks: EfficientNet(-Lite) encoders, the U-Net student, the teacher, discriminators."""
