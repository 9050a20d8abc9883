"""What `act` needs to run the generated workflows with the real code of the actions they pin.

act (host mode: steps run on this machine) fetches every remote action from GitHub, which these
machines cannot reach. Around it, all test code of the template:
- `pinned_actions`: the four actions the pipeline's jobs use (checkout, setup-python, upload-artifact,
  download-artifact), as exact trees at the pinned commits: `../shared/actions` next to the template
  (or $TEMPLATE_ACTIONS_DIR), else cloned from GitHub when it answers, else the test is skipped.
  Actions of jobs never run here (image build, attestation) get an empty stand-in.
- `tool_cache`: setup-python looks for `Python/<version>/x64` there and uses it instead of
  downloading. It is a small copy of the interpreter running these tests (its binary; the standard
  library linked; pip) with a site-packages of its own. The workflow's own install step fills it
  (`pip install -r requirements.lock` from the package index, about 260 MB of wheels, through the
  user's pip cache); one tool cache serves every job of a test session, so later jobs find the
  requirements installed and reinstall only the project: one installed environment shared across jobs
  and runs, as GitHub's runners do not (each job there installs again).
- `ArtifactProxy`: act 0.2.89's artifact server rejects upload-artifact v7 (act issue 6114: the
  JSON body's `mime_type` field is unknown to it, and the Azure SDK strips the `=` padding of the
  `sig` query parameter act signed). A small proxy in front of it drops the one and restores the other.
- `GitServer`: the real actions/checkout clones over HTTP from $GITHUB_SERVER_URL: `git http-backend`
  behind a small HTTP server, serving a bare clone of the test's repository.
- $GITHUB_SERVER_URL is a `*.localhost` name (loopback): as an IP address, the artifact actions take
  it for GitHub Enterprise Server and refuse.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import urllib.parse
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from processes import free_port

TEMPLATE = Path(__file__).resolve().parents[1]
REAL = ("actions/checkout", "actions/setup-python", "actions/upload-artifact", "actions/download-artifact")
PINNED = re.compile(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40})")


def pinned(project: Path) -> dict[str, str]:
    """Every remote action the project's workflows and local actions pin: `owner/name@sha` -> owner/name."""
    return {
        f"{name}@{sha}": name
        for path in (project / ".github").rglob("*.yml")
        for name, sha in PINNED.findall(path.read_text())
    }


def _clone(name: str, sha: str, target: Path) -> bool:
    """The action's tree at that commit, from GitHub; False when GitHub does not answer."""
    git = ["git", "-c", "advice.detachedHead=false"]
    try:
        subprocess.run([*git, "init", "-q", str(target)], check=True, capture_output=True, timeout=30)
        subprocess.run(
            [*git, "-C", str(target), "fetch", "-q", "--depth", "1", f"https://github.com/{name}", sha],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run([*git, "-C", str(target), "checkout", "-q", "FETCH_HEAD"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        shutil.rmtree(target, ignore_errors=True)
        return False
    return True


def pinned_actions(project: Path, folder: Path) -> list[str]:
    """act's `--local-repository REF=DIR` arguments: the real actions, an empty stand-in for the rest."""
    shared = Path(os.environ.get("TEMPLATE_ACTIONS_DIR") or TEMPLATE.parent / "shared" / "actions")
    stub = folder / "stub-action"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "action.yml").write_text(
        "name: stub\ndescription: an action of a job the tests never run\nruns:\n  using: composite\n  steps: []\n"
    )
    arguments = []
    for ref, name in sorted(pinned(project).items()):
        tree = stub
        if name in REAL:
            tree = shared / ref
            if not tree.is_dir():
                tree = folder / "actions" / ref
                if not tree.is_dir() and not _clone(name, ref.split("@")[1], tree):
                    pytest.skip(f"{ref}: not in {shared} and GitHub cannot be reached to clone it")
        arguments += ["--local-repository", f"{ref}={tree}"]
    return arguments


def tool_cache(folder: Path) -> Path:
    """setup-python's tool cache: Python/<version>/x64, this interpreter, seeing this venv's packages."""
    version = ".".join(map(str, sys.version_info[:3]))
    prefix = folder / "Python" / version / "x64"
    if (prefix.parent / "x64.complete").exists():
        return folder
    base, short = Path(sys.base_prefix), f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (prefix / "bin").mkdir(parents=True)
    # A copy, not a link: Python finds its standard library (and site-packages) beside its real path.
    shutil.copy2(Path(sys.executable).resolve(), prefix / "bin" / short)
    for alias in ("python3", "python"):
        (prefix / "bin" / alias).symlink_to(short)
    library = prefix / "lib" / short
    library.mkdir(parents=True)
    for entry in (base / "lib" / short).iterdir():
        if entry.name != "site-packages":
            (library / entry.name).symlink_to(entry)
    for shared_library in (base / "lib").glob("libpython*"):
        (prefix / "lib" / shared_library.name).symlink_to(shared_library)
    # Its own site-packages, holding only this venv's pip (a recent one: older pips fail to resolve the
    # lock). Never this venv's packages: pip outside a virtual environment would uninstall them.
    venv = Path(sysconfig.get_paths()["purelib"])
    for entry in [venv / "pip", *venv.glob("pip-*.dist-info")]:
        shutil.copytree(entry, library / "site-packages" / entry.name)
    seen = subprocess.run(
        [prefix / "bin" / "python", "-c", "import sys; print(sys.prefix, *sys.path)"],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert seen[0] == str(prefix) and str(venv) not in seen, f"the tool cache's Python must not see {venv}: {seen}"
    (prefix.parent / "x64.complete").touch()
    return folder


class _Forward(BaseHTTPRequestHandler):
    upstream: tuple[str, int]

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        if self.headers.get("Content-Type", "").startswith("application/json") and body:
            document = json.loads(body)
            document.pop("mime_type", None)
            body = json.dumps(document).encode()
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if any(key == "sig" for key, _ in query):
            query = [(key, value + "=" * (-len(value) % 4) if key == "sig" else value) for key, value in query]
            path = urllib.parse.urlunsplit(("", "", parts.path, urllib.parse.urlencode(query), ""))
        headers = {key: value for key, value in self.headers.items() if key.lower() != "content-length"}
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        connection.request(self.command, path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        connection.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    def log_message(self, *args) -> None:  # quiet
        pass


@contextmanager
def artifact_proxy(act_port: int):
    """An HTTP proxy on loopback in front of act's artifact server; yields its URL."""
    handler = type("Forward", (_Forward,), {"upstream": ("127.0.0.1", act_port)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _GitBackend(BaseHTTPRequestHandler):
    root: Path

    def _serve(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(parts.path),
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": "127.0.0.1",
        }
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, *args) -> None:  # quiet
        pass


@contextmanager
def git_server(repository: Path, root: Path, slug: str):
    """`git http-backend` serving a bare clone of `repository` as `<server>/<slug>`; yields the server URL."""
    bare = root / slug
    shutil.rmtree(bare, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repository), str(bare)], check=True, capture_output=True)
    handler = type("GitBackend", (_GitBackend,), {"root": root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # git.localhost resolves to loopback; an IP address would look like GitHub Enterprise Server.
        yield f"http://git.localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_act(
    project: Path,
    folder: Path,
    event_name: str,
    job: str | None,
    workflow: str = "ci.yml",
    event: Path | None = None,
    secrets: dict[str, str] | None = None,
    tools: Path | None = None,
) -> subprocess.CompletedProcess:
    """`act EVENT -j JOB` in host mode with the real actions: the job and every job it needs (with
    no JOB, every job of the workflow). One job at a time: they share the tool cache's environment.

    `project` is a git repository (act reads the commit and ref from it) whose `origin` names the
    GitHub repository (`github.repository`); the checkout clones it from a local git server.
    Artifacts live in `folder`/artifacts for this run only. act gives every secret to every job:
    which environment holds which secret is GitHub's to enforce.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "GITHUB_", "ACT"))}
    (folder / "home").mkdir(parents=True, exist_ok=True)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # the jobs' Python is the tool cache's alone
        env.pop(name, None)
    # The user's pip cache (act gives the jobs a HOME of their own): wheels are downloaded once.
    cache = env.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    env.update(HOME=str(folder / "home"), MLFLOW_DISABLE_TELEMETRY="true", PIP_CACHE_DIR=cache)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    options = ["-e", str(event)] if event else []
    for name, value in {"GITHUB_TOKEN": "not-a-token", **(secrets or {})}.items():
        options += ["--secret", f"{name}={value}"]
    # act 0.2.89's server fails to list a run's artifacts before the run's folder exists (and every
    # `overwrite: true` upload lists first): make it (act's run id is 1).
    (folder / "artifacts" / "1").mkdir(parents=True, exist_ok=True)
    repository = urllib.parse.urlsplit(_origin(project)).path.strip("/").removesuffix(".git")
    with artifact_proxy(port) as proxy, git_server(project, folder / "git", repository) as server:
        env["ACTIONS_RUNTIME_URL"] = proxy  # act hands it to the jobs as their artifact service
        return subprocess.run(
            [
                str(Path(sys.executable).parent / "act"),
                event_name,
                "-W",
                f".github/workflows/{workflow}",
                *(["-j", job] if job else []),
                "--concurrent-jobs",
                "1",
                *options,
                "-P",
                "ubuntu-latest=-self-hosted",
                "--no-skip-checkout",
                "--artifact-server-path",
                str(folder / "artifacts"),
                "--artifact-server-addr",
                "127.0.0.1",
                "--artifact-server-port",
                str(port),
                "--env",
                f"AGENT_TOOLSDIRECTORY={tools or tool_cache(folder / 'tools')}",
                "--env",
                f"GITHUB_SERVER_URL={server}",
                *pinned_actions(project, folder),
            ],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
        )


def _origin(project: Path) -> str:
    return subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
