"""Run inside a baked project whose pipeline ran: log rows to the prediction log as the server does.

`python monitor_feed.py DATABASE_URL ROWS.parquet [REQUEST_ROWS]`: the rows' model inputs are scored
by the exported ONNX model (outputs/model.onnx, what the server serves), written with the project's
own `prediction_log.write` (source "server", one request per REQUEST_ROWS rows, the registered version
and training run), then labelled with `prediction_log.add_labels` from the column `label` where it
is not null, one call per request, as /feedback does.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pandas as pd
from credit_model import config as configuration
from credit_model import data, onnx_model
from credit_model.serving import prediction_log


def main(url: str, rows_path: str, request_rows: int = 50) -> None:
    config = configuration.load(Path("config.yaml"))
    rows = pd.read_parquet(rows_path)
    labels = rows.pop("label")
    schema = data.schema(config, rows.assign(**{config.data.target: labels}))
    session = onnx_model.session(Path("outputs/model.onnx").read_bytes())
    predicted = onnx_model.predict(session, onnx_model.feeds(data.features(rows, schema), schema), schema.task)
    model = prediction_log.Model(
        name=config.tracking.model_name,
        version=json.loads(Path("outputs/registered.json").read_text())["model_version"],
        run_id=json.loads(Path("outputs/run.json").read_text())["run_id"],
    )
    inputs = rows[schema.features].astype(object).where(rows[schema.features].notna(), None).to_dict("records")
    with prediction_log.connect(url) as connection:
        for start in range(0, len(rows), request_rows):
            part = slice(start, start + request_rows)
            request_id = str(uuid.uuid4())
            prediction_log.write(
                connection,
                model,
                "server",
                request_id,
                inputs[part],
                predicted.point[part].tolist(),
                predicted.probabilities[part].tolist() if hasattr(predicted, "probabilities") else None,
            )
            known = labels.iloc[part]
            if known.notna().all():
                prediction_log.add_labels(connection, request_id, known.tolist())
    print(f"logged {len(rows)} rows for {model}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
