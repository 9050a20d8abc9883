"""Benchmark: this project's ONNX server against `mlflow models serve` for the same model, with wrk.

    python bench/serve.py                       # model: outputs/model.onnx; MLflow model: the run in outputs/run.json
    python bench/serve.py --run-id <id> --duration 10 --workers 1
    python bench/serve.py --model-uri models:/{{ cookiecutter.project_slug }}@challenger --skip-mlflow
    python bench/serve.py --skip-mlflow --log-url postgresql://... --log-samples 0.1 1 --rounds 5   # the log's cost
    python bench/serve.py --skip-mlflow --batching off 0 0.5 --concurrency 1 8 64   # dynamic batching's effect
    python bench/serve.py --skip-mlflow --protocol stock no-fast-lane --concurrency 8 --rounds 5   # its protocol layer
    python bench/serve.py --skip-mlflow --baseline-src ../main/src --rounds 5   # this checkout against another one

Prints a Markdown table (throughput, p50, p99, the server's CPU time per request, start-up time, RSS)
and the targets. Not a test: the figures depend on the machine; run it on the machine you will serve
from. Needs `wrk` (apt install wrk). With --log-url, the ONNX server also runs with request logging
at each of --log-samples ("onnx log 0.1"); each scenario runs on every server in turn, so that a busy
machine slows them alike, and a last table says how many sampled requests each wrote or dropped.
With --batching, the ONNX server also runs with dynamic batching off or at each window given
("onnx batching 0 ms"); the table then says how many requests each onnxruntime call merged.
With --protocol, the same app also runs on uvicorn's stock HTTP protocol with only uvicorn's own settings
("onnx stock protocol": no header deadline, no head cap on httptools, no /health past MAX_CONNECTIONS),
and without the fast lane ("onnx no fast lane": every request through FastAPI's router, no metrics,
no body limits): what serving/protocol.py and serving/fastlane.py cost or save. With --baseline-src,
the package from another checkout's src/ runs beside this one ("onnx baseline"): did a change slow it?
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    startup_s: float


@dataclass
class Result:
    server: str
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # the server's CPU time (all its processes and threads) per request
    merged: float = 0.0  # requests per onnxruntime call (dynamic batching; 0: none merged)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn workers), from /proc."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    total = 0
    for current in descendants(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants, every thread included: unlike throughput,
    hardly moved by other work on the machine, so small costs (the request log's) show."""
    total = 0
    for current in descendants(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def start(
    name: str, command: list[str], ready_url: str, log: Path, env: dict | None = None, timeout: float = 120
) -> Server:
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=1) as response:
                if response.status == 200:
                    base = ready_url.rsplit("/", 1)[0]
                    return Server(name, process, base, time.perf_counter() - started)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{name} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stock_uvicorn(port: int, workers: int, app: str, app_dir: Path | None = None) -> list[str]:
    """`python -m uvicorn` for the app with the speed options and the limits the project's server passes
    (server.limits), on uvicorn's own HTTP protocol instead of the project's (serving/protocol.py)."""
    from {{ cookiecutter.package_name }}.serving import server
    from {{ cookiecutter.package_name }}.serving.settings import Settings

    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port), "--workers", str(workers)]
    command += ["--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    for option, value in server.limits(Settings.from_env()).items():
        command += [f"--{option.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return command + (["--app-dir", str(app_dir)] if app_dir else [])


def app_without_fast_lane():  # noqa: ANN201 - a FastAPI app; imported by uvicorn in the server process
    """The server's app minus its fast lane (fastlane.FastLane): every request goes through FastAPI's
    router; no request metrics and no body limits, so a lower bound on what the router costs."""
    from {{ cookiecutter.package_name }}.serving.app import create_app
    from {{ cookiecutter.package_name }}.serving.fastlane import FastLane

    app = create_app()
    # Starlette builds its middleware stack on the first request: dropping it from the list suffices.
    app.user_middleware = [middleware for middleware in app.user_middleware if middleware.cls is not FastLane]
    return app


def wrk(url: str, connections: int, duration: int, body: str | None, scratch: Path) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx + socket errors) for one wrk run."""
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if body is not None:
        script = scratch / "post.lua"
        # A Lua long string: the JSON body needs no escaping.
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n'
        )
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return rps, millis("50"), millis("99"), errors


def sample_rows(model: Path, data: Path, rows: int) -> tuple[list[dict], dict[str, str]]:
    """Rows by the table's column names (what the ONNX server takes), and column -> input name (what
    the native MLflow model's signature takes)."""
    import onnxruntime as ort

    from {{ cookiecutter.package_name }}.ops import container
    from {{ cookiecutter.package_name }}.serving import contract

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    schema = json.loads(session.get_modelmeta().custom_metadata_map[contract.SCHEMA])
    table = container.sample_rows(schema, data, PROJECT / "config.yaml", 1000)
    inputs = {f["name"]: f.get("input", f["name"]) for f in schema["features"]}
    return [table[i % len(table)] for i in range(rows)], inputs


def mlflow_model_uri(run_id: str | None, model_uri: str | None) -> str:
    from {{ cookiecutter.package_name }} import lineage

    if model_uri:
        return model_uri
    if run_id is None:
        run_file = PROJECT / "outputs" / lineage.RUN_FILE
        if not run_file.exists():
            raise SystemExit(f"no --run-id/--model-uri and no {run_file}: run `make pipeline` first")
        run_id = json.loads(run_file.read_text())["run_id"]
    from mlflow.tracking import MlflowClient

    tags = MlflowClient().get_run(run_id).data.tags
    return tags.get(lineage.MODEL_URI) or f"runs:/{run_id}/model"


def tracking_env() -> dict[str, str]:
    if "MLFLOW_TRACKING_URI" in os.environ:
        return {}
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{PROJECT / 'mlflow.db'}"}


def median(results: list[Result]) -> Result:
    """Each figure's median over rounds (errors: the total)."""
    first = results[0]
    return Result(
        first.server,
        first.scenario,
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.cpu_us for r in results),
        statistics.median(r.merged for r in results),
    )


def batch_counts(server: Server) -> tuple[float, float]:
    """(onnxruntime calls, requests in them) so far, from the batcher's histogram in /metrics."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = dict(re.findall(r"^predict_batch_requests_(count|sum) ([\d.e+]+)$", text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def logged(server: Server) -> str:
    """The prediction log's counters from the server's /metrics: written and dropped (by reason)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    written = re.search(r"^prediction_log_written_total ([\d.e+]+)$", text, re.M)
    dropped = re.findall(r'^prediction_log_dropped_total\{reason="(\w+)"\} ([\d.e+]+)$', text, re.M)
    drops = ", ".join(f"{reason} {float(count):,.0f}" for reason, count in dropped if float(count)) or "none"
    return f"| {server.name} | {float(written.group(1)) if written else 0:,.0f} | {drops} |"


def table(results: list[Result], servers: dict[str, Server], rss: dict[str, float]) -> str:
    lines = [
        "| server | scenario | requests/s | rows/s | p50 ms | p99 ms | errors | server CPU µs/request "
        "| requests per onnxruntime call |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows = r.rps * (1000 if "1000 rows" in r.scenario else 1)
        merged = f"{r.merged:.1f}" if r.merged else ""
        lines.append(
            f"| {r.server} | {r.scenario} | {r.rps:,.0f} | {rows:,.0f} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.errors} "
            f"| {r.cpu_us:,.0f} | {merged} |"
        )
    lines += ["", "| server | start-up to ready (s) | RSS after load (MB) |", "|---|---:|---:|"]
    lines += [f"| {name} | {server.startup_s:.2f} | {rss[name]:.0f} |" for name, server in servers.items()]
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    def get(server, scenario):
        return next((r for r in results if r.server == server and r.scenario == scenario), None)

    onnx1, mlflow1 = get("onnx", "predict 1 row c=1"), get("mlflow", "predict 1 row c=1")
    onnxb, mlflowb = get("onnx", "predict 1000 rows c=1"), get("mlflow", "predict 1000 rows c=1")
    checks = []
    if onnx1 and mlflow1:
        checks.append(
            (">= 30x mlflow single-row rps at c=1", f"{onnx1.rps / mlflow1.rps:.1f}x", onnx1.rps >= 30 * mlflow1.rps)
        )
    for server in dict.fromkeys(r.server for r in results if r.server != "mlflow"):  # every ONNX variant
        one, eight = (get(server, f"predict 1 row c={c}") for c in (1, 8))
        health = get(server, "health c=8")
        if one:
            checks.append((f"{server}: p99 single row at c=1 < 1 ms", f"{one.p99_ms:.3f} ms", one.p99_ms < 1.0))
        if eight and health:
            ratio = eight.rps / health.rps
            checks.append((f"{server}: /predict rps >= 0.5x /health rps (c=8)", f"{ratio:.2f}x", ratio >= 0.5))
    if onnxb and mlflowb:
        checks.append(
            ("1000-row batch rps >= mlflow's", f"{onnxb.rps:,.0f} vs {mlflowb.rps:,.0f}", onnxb.rps >= mlflowb.rps)
        )
    lines = ["| target | measured | met |", "|---|---:|:---:|"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'NO'} |" for name, value, ok in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT / "outputs" / "model.onnx", help="ONNX file")
    parser.add_argument("--run-id", help="MLflow run whose model `mlflow models serve` serves")
    parser.add_argument("--model-uri", help="MLflow model URI (instead of --run-id)")
    parser.add_argument("--data", type=Path, help="table to take rows from (default: the bundled data)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per server and scenario, interleaved; the table gives medians"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for both servers")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument(
        "--log-url",
        help="a migrated prediction log's PostgreSQL URL (`prediction-log migrate`): also bench logging to it",
    )
    parser.add_argument(
        "--log-samples", type=float, nargs="+", default=[0.1, 1.0], help="PREDICTION_LOG_SAMPLE values to bench"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 64], help="connections for the single-row scenarios"
    )
    parser.add_argument(
        "--batching",
        nargs="+",
        default=[],
        metavar="off|WINDOW_MS",
        help="also bench the ONNX server with dynamic batching off, or on with each DYNAMIC_BATCH_WINDOW_MS given",
    )
    parser.add_argument("--batch-rows", type=int, default=64, help="DYNAMIC_BATCH_ROWS when --batching is on")
    parser.add_argument(
        "--protocol",
        nargs="+",
        default=[],
        choices=["stock", "no-fast-lane"],
        help="also bench the app on uvicorn's stock protocol with uvicorn's own settings only (stock), "
        "and/or there without the fast lane (no-fast-lane)",
    )
    parser.add_argument(
        "--baseline-src", type=Path, help="another checkout's src/: also bench the server from there, interleaved"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    data = args.data or next((PROJECT / "data").glob("credit_*.csv"))
    batch, inputs = sample_rows(args.model, data, 1000)
    one = batch[:1]
    columns = list(one[0])

    def split(rows):  # MLflow's pandas-split input, by the native model's input names
        names = [inputs[c] for c in columns]
        return json.dumps({"dataframe_split": {"columns": names, "data": [[r[c] for c in columns] for r in rows]}})

    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    servers: dict[str, Server] = {}
    rss: dict[str, float] = {}
    results: list[Result] = []
    variants = {"onnx": {}}
    for rate in args.log_samples if args.log_url else []:
        variants[f"onnx log {rate:g}"] = {"PREDICTION_LOG_URL": args.log_url, "PREDICTION_LOG_SAMPLE": str(rate)}
    for window in args.batching:
        if window == "off":
            variants["onnx batching off"] = {"DYNAMIC_BATCH_ROWS": "0"}
        else:
            batching = {"DYNAMIC_BATCH_ROWS": str(args.batch_rows), "DYNAMIC_BATCH_WINDOW_MS": window}
            variants[f"onnx batching {float(window):g} ms"] = batching
    # name -> (the app uvicorn's stock protocol serves, or None: the project's server; its environment)
    starts: dict[str, tuple[str | None, dict[str, str]]] = {name: (None, env) for name, env in variants.items()}
    source = {"PYTHONPATH": str(PROJECT / "src")}
    if args.baseline_src:
        starts["onnx baseline"] = None, {"PYTHONPATH": str(args.baseline_src.resolve())}
    if "stock" in args.protocol:
        starts["onnx stock protocol"] = f"{PACKAGE}.serving.app:create_app", {}
    if "no-fast-lane" in args.protocol:
        starts["onnx no fast lane"] = "serve:app_without_fast_lane", {}  # this file, from --app-dir
    log_counts: list[str] = []
    try:
        for name, (app, env) in starts.items():
            port = free_port()
            if app is None:
                command = [sys.executable, "-m", f"{PACKAGE}.serving", "--port", str(port)]
                command += ["--workers", str(args.workers)]
            else:
                here = Path(__file__).parent if app.startswith("serve:") else None
                command = stock_uvicorn(port, args.workers, app, here)
            servers[name] = start(
                name,
                command,
                f"http://127.0.0.1:{port}/ready",
                scratch / f"{name}.log",
                env={**source, **env, "MODEL_PATH": str(args.model)},
            )
        if not args.skip_mlflow:
            port = free_port()
            uri = mlflow_model_uri(args.run_id, args.model_uri)
            servers["mlflow"] = start(
                "mlflow",
                [
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    uri,
                    "-p",
                    str(port),
                    "-w",
                    str(args.workers),
                    "--env-manager",
                    "local",
                ],
                f"http://127.0.0.1:{port}/ping",
                scratch / "mlflow.log",
                env={**tracking_env(), "MLFLOW_DISABLE_TELEMETRY": "true"},
                timeout=180,
            )
        scenarios = {
            "onnx": [
                ("health c=8", "/health", 8, None),
                *[(f"predict 1 row c={c}", "/predict", c, json.dumps({"records": one})) for c in args.concurrency],
                ("predict 1000 rows c=1", "/predict", 1, json.dumps({"records": batch})),
            ],
            "mlflow": [
                *[(f"predict 1 row c={c}", "/invocations", c, split(one)) for c in args.concurrency],
                ("predict 1000 rows c=1", "/invocations", 1, split(batch)),
            ],
        }
        for name in starts:
            scenarios[name] = scenarios["onnx"]
        for name, server in servers.items():
            # Warm-up: first requests pay for lazy imports and allocations; not what is measured.
            _, path, _, body = scenarios[name][1]
            wrk(server.url + path, 1, 2, body, scratch)
        # Scenario by scenario, every server in turn: a machine that slows down mid-run slows them alike.
        runs: dict[tuple[str, str], list[Result]] = {}
        for index in range(max(len(s) for s in scenarios.values())):
            for round_ in range(args.rounds):
                for name, server in servers.items():
                    if index >= len(scenarios[name]):
                        continue
                    scenario, path, connections, body = scenarios[name][index]
                    print(f"{name}: {scenario} ({round_ + 1}/{args.rounds}) ...", file=sys.stderr, flush=True)
                    calls, merged = batch_counts(server) if name != "mlflow" else (0.0, 0.0)
                    used = cpu_seconds(server.process.pid)
                    measured = wrk(server.url + path, connections, args.duration, body, scratch)
                    used = cpu_seconds(server.process.pid) - used
                    cpu_us = used / max(measured[0] * args.duration, 1) * 1e6
                    if name != "mlflow":
                        after = batch_counts(server)
                        calls, merged = after[0] - calls, after[1] - merged
                    per_call = merged / calls if calls else 0.0
                    runs.setdefault((name, scenario), []).append(Result(name, scenario, *measured, cpu_us, per_call))
        results = [median(found) for found in runs.values()]
        for name, server in servers.items():
            rss[name] = rss_mb(server.process.pid)
        if args.log_url:
            time.sleep(1)  # the writers' last round
            log_counts = [logged(servers[name]) for name in variants if name != "onnx"]
    finally:
        for server in servers.values():
            stop(server.process)
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(results, servers, rss))
    print()
    if log_counts:
        print("| server | sampled requests written | dropped |\n|---|---:|---|")
        print("\n".join(log_counts))
        print()
    print(targets(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
