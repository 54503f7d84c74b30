"""Faces: detection, 5-point landmarks and alignment, declared as part of a model's preprocessing."""
