# Triton serving image: NVIDIA Triton Inference Server (GPU, its onnxruntime backend) serving the model
# repository `export` writes (outputs/triton/<model name>/config.pbtxt: inputs, outputs and dynamic
# batching from the ONNX contract), with the digest-verified outputs/model.onnx as version 1.
# The release builds it instead of docker/Dockerfile when config.yaml says `serve: {server: triton}`.
#
#   docker build -f docker/triton.Dockerfile -t {{ cookiecutter.project_slug }}:triton .   (after `make export`)
#
# Pinned by tag: the image's digest could not be read where this template was made (nvcr.io was out
# of reach). Pin it by digest once you can pull it:
#   docker buildx imagetools inspect nvcr.io/nvidia/tritonserver:26.07-py3    -> ...:26.07-py3@sha256:<digest>
# 26.07 needs CUDA 13.3's driver (R580 or later; NVIDIA's release notes).
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:26.07-py3
FROM ${TRITON_IMAGE}

# Triton's model name: config.yaml's tracking.model_name (the folder `export` wrote under outputs/triton/).
ARG MODEL_NAME={{ cookiecutter.project_slug }}
COPY outputs/triton/${MODEL_NAME}/config.pbtxt /models/${MODEL_NAME}/config.pbtxt
# The file whose digest the release checked, not the repository's copy of it.
COPY outputs/model.onnx /models/${MODEL_NAME}/1/model.onnx
USER 0
RUN chmod -R a+rX,a-w /models

ARG SOURCE=https://github.com/{{ cookiecutter.github_owner }}/{{ cookiecutter.project_slug }}
ARG REVISION=unknown
ARG MLFLOW_RUN_ID=unknown
ARG MODEL_VERSION=""
LABEL org.opencontainers.image.title="{{ cookiecutter.project_slug }}" \
      org.opencontainers.image.description="{{ cookiecutter.project_name }} on NVIDIA Triton (onnxruntime backend)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      io.mlflow.run-id="${MLFLOW_RUN_ID}" \
      io.mlflow.model-version="${MODEL_VERSION}"

# Not root: the same user id as the built-in image and the Kubernetes Deployment's runAsUser.
USER 10001
EXPOSE 8000 8001 8002
# Healthy = every model loaded (strict readiness), checked with the image's own python3: no curl needed.
HEALTHCHECK --interval=10s --timeout=4s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=3)"]
# HTTP (KServe v2) on 8000, gRPC on 8001, Prometheus metrics on 8002. The config is used as written
# (no auto-completion) and a model that fails to load stops the server instead of serving without it.
CMD ["tritonserver", "--model-repository=/models", "--strict-readiness=true", "--exit-on-error=true", \
     "--disable-auto-complete-config", "--model-control-mode=none"]
