"""Offline half of the project: train the VAE on IDX image files and export it to ONNX."""
