"""NVIDIA Triton: the model repository `export` writes (repository.py), the Python-backend model for Triton
builds without the onnxruntime backend (python_model.py), and a KServe v2 client for smoke tests (kserve.py)."""
