"""What the tabular family adds to the server (serving/extensions.py finds it by this folder): encrypted
inference for linear models. encrypted_api.py has its routes and settings, encrypted.py the CKKS scoring, and
linear.py reads a linear model's weights from its ONNX graph. The serving image ships this folder."""

# Modules, dotted from the package, each with `extension(model, settings, env)`: the server adds their routes.
EXTENSIONS = ("tabular.serving.encrypted_api",)
