"""The OpenAPI description of /predict and /feedback, generated from the model's own input schema.

The request models are built once with pydantic so /docs shows the real column names, types and
category values; they document the API and are never used to validate requests (see inputs.py).
"""

from __future__ import annotations

from types import GenericAlias
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from . import request_ids
from .inputs import FLOAT32_MAX
from .model import Feature, Model

REF = "#/components/schemas/{model}"


MISSING_NOTE = "null when unknown: the model imputes it as it did in training."


def _value_type(feature: Feature) -> Any:
    if feature.kind == "number":
        number = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX, allow_inf_nan=False)]
        return Annotated[number | None, Field(description=MISSING_NOTE)]
    if feature.categories:
        note = (
            "Known values listed; unseen values are refused."
            if feature.strict_categories
            else "Known values listed; an unseen value is accepted and treated as none of them."
        )
        return Annotated[Literal[feature.categories] | None, Field(description=f"{note} {MISSING_NOTE}")]
    return Annotated[str | None, Field(description=MISSING_NOTE)]


def _list_of(item: Any) -> Any:
    """`list[item]` for an item type only known at run time (which mypy cannot check)."""
    return GenericAlias(list, (item,))


def _field_name(index: int) -> str:
    # Column names need not be Python identifiers; the JSON name is the alias.
    return f"f{index}"


def request_models(model: Model, max_rows: int) -> tuple[type[BaseModel], type[BaseModel]]:
    forbid = ConfigDict(extra="forbid", populate_by_name=False)
    # Typed Any: create_model's keyword arguments are checked against its own `__config__`, `__doc__`...
    record_fields: dict[str, Any] = {
        _field_name(i): (_value_type(f), Field(alias=f.name)) for i, f in enumerate(model.features)
    }
    record = create_model("Record", __config__=forbid, **record_fields)
    column_fields: dict[str, Any] = {
        _field_name(i): (_list_of(_value_type(f)), Field(alias=f.name, min_length=1, max_length=max_rows))
        for i, f in enumerate(model.features)
    }
    columns = create_model("Columns", __config__=forbid, **column_fields)
    records_body = create_model(
        "RecordsRequest",
        __config__=forbid,
        records=(_list_of(record), Field(min_length=1, max_length=max_rows, description="One object per row")),
    )
    columns_body = create_model(
        "ColumnsRequest",
        __config__=forbid,
        columns=(columns, Field(description="One array per column, all of the same length")),
    )
    return records_body, columns_body


class ClassificationResponse(BaseModel):
    predictions: list[int | str] = Field(description="Predicted class per row")
    probabilities: list[list[float]] = Field(description="Per row, one probability per class, in `classes` order")
    classes: list[int | str]


class RegressionResponse(BaseModel):
    predictions: list[float]


class Problem(BaseModel):
    detail: str = Field(description="What is wrong and where (field and row)")


REQUEST_ID_SCHEMA = {"type": "string", "pattern": request_ids.PATTERN, "maxLength": request_ids.MAX_LENGTH}
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id, made by the server (a client's own X-Request-ID is ignored). "
        "Sampled requests are logged under it; send it to /feedback with the true labels.",
        "required": True,
        "schema": REQUEST_ID_SCHEMA,
    }
}


class FeedbackResponse(BaseModel):
    request_id: str
    labelled: int = Field(description="Rows labelled")


def _transport_errors() -> dict[str, dict]:
    """The answers every JSON POST route shares, given before its body is parsed (serving/protocol.py)."""
    problem = _body("Problem")
    return {
        "408": {"description": "Body not received within BODY_TIMEOUT of the headers", **problem},
        "413": {"description": "A body over MAX_BODY_BYTES", **problem},
        "415": {"description": "Content-Type is not application/json (UTF-8)", **problem},
    }


def _body(name: str) -> dict:
    media = {"schema": {"$ref": REF.format(model=name)}}  # spaced: "}" twice would be Jinja syntax
    return dict(content={"application/json": media})


def schemas(model: Model, max_rows: int) -> tuple[dict, dict]:
    """(components.schemas entries, the /predict operation's extra OpenAPI fields)."""
    records_body, columns_body = request_models(model, max_rows)
    response = ClassificationResponse if model.classification else RegressionResponse
    # Built at run time from the generated models: Any, as mypy cannot check a type made of variables.
    request_type: Any = Union[records_body, columns_body]  # noqa: UP007
    request = TypeAdapter(request_type).json_schema(ref_template=REF)
    components = dict(request.pop("$defs", {}))
    components["PredictRequest"] = request
    for extra in (response, Problem):
        described = extra.model_json_schema(ref_template=REF)
        components.update(described.pop("$defs", {}))
        components[extra.__name__] = described

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
    return components, operation


def feedback_schemas(model: Model, max_rows: int) -> tuple[dict, dict]:
    """(components.schemas entries, the /feedback operation's extra OpenAPI fields)."""
    label: dict[str, Any] = (
        {"enum": list(model.classes), "description": "One of the model's classes"}
        if model.classification
        else {"type": "number", "description": "The true value"}
    )
    request = {
        "type": "object",
        "title": "FeedbackRequest",
        "additionalProperties": False,
        "required": ["request_id", "labels"],
        "properties": {
            "request_id": {**REQUEST_ID_SCHEMA, "description": "The X-Request-ID of a logged /predict answer"},
            "labels": {
                "type": "array",
                "items": label,
                "minItems": 1,
                "maxItems": max_rows,
                "description": "One true label per row of that request, in the order the rows were sent",
            },
        },
    }
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
