"""Inference server for the exported ONNX model.

Depends only on the ONNX contract (inputs per column, `label`/`probabilities` or `prediction`
outputs, `mlops.*` metadata) and on fastapi, uvicorn, onnxruntime, numpy, orjson and
prometheus-client, so it runs in a slim image without mlflow, pandas or scikit-learn.
"""
