"""Online half of the project: serve the exported ONNX encoder and decoder over HTTP."""
