"""What the tabular family reads and writes: tables, sample data, ONNX model files, plots."""
