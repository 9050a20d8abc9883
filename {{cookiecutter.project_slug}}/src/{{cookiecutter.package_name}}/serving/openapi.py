"""The OpenAPI description of /predict and /feedback: the operations, their answers and the responses'
schemas.

Request bodies are described where they are checked, so each rule is written in one module: /predict's
by the plan that parses it (inputs.request_schemas: columns, types, categories, limits), /feedback's
beside Feedback.parse (feedback.request_schema), a request id's beside request_ids.valid.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from . import feedback, request_ids
from .inputs import Plan, request_schemas
from .model import Model

REF = "#/components/schemas/{model}"


def _ref(name: str) -> str:
    return REF.format(model=name)


class ClassificationResponse(BaseModel):
    predictions: list[int | str] = Field(description="Predicted class per row")
    probabilities: list[list[float]] = Field(description="Per row, one probability per class, in `classes` order")
    classes: list[int | str]


class RegressionResponse(BaseModel):
    predictions: list[float]


class Problem(BaseModel):
    detail: str = Field(description="What is wrong and where (field and row)")


REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id, made by the server (a client's own X-Request-ID is ignored). "
        "Sampled requests are logged under it; send it to /feedback with the true labels.",
        "required": True,
        "schema": request_ids.SCHEMA,
    }
}


class FeedbackResponse(BaseModel):
    request_id: str
    labelled: int = Field(description="Rows labelled")


def _transport_errors() -> dict[str, dict]:
    """The answers every JSON POST route shares, given before its body is parsed (fastlane.py)."""
    problem = _body("Problem")
    return {
        "408": {"description": "Body not received within BODY_TIMEOUT of the headers", **problem},
        "413": {"description": "A body over MAX_BODY_BYTES", **problem},
        "415": {"description": "Content-Type is not application/json (UTF-8)", **problem},
    }


def _body(name: str) -> dict:
    media = {"schema": {"$ref": REF.format(model=name)}}  # spaced: "}" twice would be Jinja syntax
    return dict(content={"application/json": media})


def predict_components(plan: Plan, model: Model) -> dict[str, dict]:
    """components.schemas: the /predict request (from the plan that checks it), its responses and Problem."""
    components = request_schemas(plan, _ref)
    for extra in (ClassificationResponse if model.classification else RegressionResponse, Problem):
        described = extra.model_json_schema(ref_template=REF)
        components.update(described.pop("$defs", {}))
        components[extra.__name__] = described
    return components


def predict_operation(model: Model) -> dict:
    """The /predict operation's extra OpenAPI fields (its body and answers' schemas: predict_components)."""
    response = ClassificationResponse if model.classification else RegressionResponse
    problem = _body("Problem")
    operation: dict[str, Any] = {
        "requestBody": {"required": True, **_body("PredictRequest")},
        "responses": {
            "200": {"description": "Predictions, one per row, in request order", **_body(response.__name__)},
            "400": {"description": "Empty body or malformed JSON", **problem},
            **_transport_errors(),
            "413": {"description": "More rows than MAX_BATCH_ROWS, or a body over MAX_BODY_BYTES", **problem},
            "422": {"description": "Missing/unknown column, wrong type, non-finite number, empty batch", **problem},
            "503": {"description": "Model not loaded yet", **problem},
        },
    }
    for answer in operation["responses"].values():
        answer["headers"] = REQUEST_ID_HEADER
    return operation


def feedback_schemas(model: Model, max_rows: int) -> tuple[dict, dict]:
    """(components.schemas entries, the /feedback operation's extra OpenAPI fields)."""
    request = feedback.request_schema(model.classes if model.classification else None, max_rows)
    response = FeedbackResponse.model_json_schema(ref_template=REF)
    problem = _body("Problem")
    retry = {"Retry-After": {"description": "Seconds until a request is allowed", "schema": {"type": "integer"}}}
    operation = {
        # Documented inline: the token's scheme is this operation's alone (no security component).
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "description": "Bearer <one of the server's FEEDBACK_TOKEN values>",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {"required": True, **_body("FeedbackRequest")},
        "responses": {
            "200": {"description": "The labels are recorded", **_body("FeedbackResponse")},
            "400": {"description": "Empty body or malformed JSON", **problem},
            "401": {"description": "No token, or not one of the server's FEEDBACK_TOKEN values", **problem},
            "403": {"description": "Feedback is off: no FEEDBACK_TOKEN is configured", **problem},
            "404": {"description": "No such request in the log: not sampled, unknown, or not written yet", **problem},
            "409": {"description": "The request is labelled already: a label is final", **problem},
            **_transport_errors(),
            "422": {"description": "A bad body, a label the model cannot have, or not one label per row", **problem},
            "429": {"description": "Over FEEDBACK_RATE_PER_MINUTE", "headers": retry, **problem},
            "503": {"description": "No prediction log configured, or the database cannot be reached", **problem},
        },
    }
    return {"FeedbackRequest": request, "FeedbackResponse": response}, operation
