"""`anyllm batch`: submit, watch and fetch batches on a running proxy, or run one in-process.

    submit FILE  ──Anthropic: POST /v1/messages/batches; OpenAI: POST /v1/files + POST /v1/batches──>
    status | list | wait | results | cancel ID   (the id's prefix picks the API: msgbatch_ / batch_)
    run FILE --backend NAME   in-process: the same settings as `serve`, the same store and engine

Remote commands talk to `--url` (ANYLLM_URL, else http://127.0.0.1:3000) with `--api-key`
(ANYLLM_API_KEY), sent as both x-api-key and Authorization: Bearer. Anthropic batches report
live progress in the proxy's extra `anyllm_counts` field (the API's own counts move only at the
end). `wait` and `run` draw a progress bar on a terminal and print plain lines when piped; Ctrl-C
on `wait` leaves the batch running.

What it gives up: `submit` sends an Anthropic file as one request body (the API's shape), so the
256 MB limit is the proxy's body limit too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError

app = typer.Typer(
    name="batch",
    help="Batches in either provider's format, on any backend.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

URL = Annotated[
    str | None, typer.Option("--url", metavar="URL", help="The proxy [ANYLLM_URL or :3000].")
]
KEY = Annotated[
    str | None, typer.Option("--api-key", metavar="KEY", help="A proxy key [ANYLLM_API_KEY].")
]
JSON = Annotated[bool, typer.Option("--json", help="Print the batch object as JSON.")]
BatchId = Annotated[
    str, typer.Argument(metavar="ID", help="The batch's id (msgbatch_... or batch_...).")
]
POLL_S = 1.0


class Remote:
    """The proxy's batch endpoints, in either API."""

    def __init__(self, url: str | None, key: str | None) -> None:
        import httpx

        base = (url or os.environ.get("ANYLLM_URL") or "http://127.0.0.1:3000").rstrip("/")
        key = key or os.environ.get("ANYLLM_API_KEY") or "anyllm"
        headers = {"x-api-key": key, "authorization": f"Bearer {key}"}
        headers["anthropic-version"] = "2023-06-01"
        self.client = httpx.Client(base_url=base, headers=headers, timeout=600)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise UpstreamError(ErrorKind.API_ERROR, f"{self.client.base_url}: {exc}") from None
        if response.status_code >= 400:
            from anyllm_cli.errors import parse_error_body

            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            kind, message = parse_error_body(body, response.status_code)
            raise UpstreamError(kind, message, status=response.status_code)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def status(self, batch_id: str) -> dict[str, Any]:
        path = _path(batch_id)
        result: dict[str, Any] = self.call("GET", path)
        return result

    def progress(self, batch_id: str) -> tuple[int, int, int, bool]:
        """(done, failed, total, ended)."""
        return _counts(self.status(batch_id))

    def results(self, batch_id: str) -> bytes:
        b = self.status(batch_id)
        if batch_id.startswith("msgbatch_"):
            if not b.get("results_url"):
                raise InvalidInput(f"batch {batch_id} has not ended ({b['processing_status']})")
            data: bytes = self.call("GET", f"/v1/messages/batches/{batch_id}/results")
            return data
        out = b""
        for key in ("output_file_id", "error_file_id"):
            if b.get(key):
                out += self.call("GET", f"/v1/files/{b[key]}/content")
        if not out and b["status"] not in ("completed", "expired", "cancelled"):
            raise InvalidInput(f"batch {batch_id} has not ended ({b['status']})")
        return out


def _path(batch_id: str) -> str:
    if batch_id.startswith("msgbatch_"):
        return f"/v1/messages/batches/{batch_id}"
    if batch_id.startswith("batch_"):
        return f"/v1/batches/{batch_id}"
    raise InvalidInput(f"{batch_id!r} is not a batch id (msgbatch_... or batch_...)")


def _counts(b: dict[str, Any]) -> tuple[int, int, int, bool]:
    """(done, failed, total, ended) of either API's batch object."""
    if "processing_status" in b:  # Anthropic's, with the proxy's own counts beside the API's
        c = b.get("anyllm_counts") or {}
        ended = b["processing_status"] == "ended"
        return c.get("done", 0), c.get("failed", 0), c.get("total", 0), ended
    c = b.get("request_counts") or {}
    done = c.get("completed", 0) + c.get("failed", 0)
    ended = b.get("status") in ("completed", "failed", "expired", "cancelled")
    return done, c.get("failed", 0), c.get("total", 0), ended


def _created(obj: dict[str, Any]) -> float:
    """created_at as Unix seconds: OpenAI gives an integer, Anthropic an RFC 3339 string."""
    from datetime import datetime

    value = obj.get("created_at")
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _print(obj: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=2))
        return
    status = obj.get("processing_status") or obj.get("status")
    counts = obj.get("anyllm_counts") or obj.get("request_counts") or {}
    shown = " ".join(f"{k}={v}" for k, v in counts.items())
    typer.echo(f"{obj['id']}  {status}  {shown}")


def _watch(remote: Remote, batch_id: str) -> None:
    from anyllm_cli.cli._console import BatchProgress

    bar = BatchProgress(batch_id)
    try:
        while True:
            done, failed, total, ended = remote.progress(batch_id)
            bar.update(done, failed, total)
            if ended:
                return
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        bar.close()
        sys.stderr.write(f"still running; watch again with: anyllm batch wait {batch_id}\n")
        raise typer.Exit(130) from None
    finally:
        bar.close()


def _submit_body(data: bytes, fmt: str, model: str | None) -> Any:
    from anyllm_cli.batch.job import load

    job = load(data, fmt if fmt in ("anthropic", "openai") else None)  # type: ignore[arg-type]
    rows = []
    for item in job.items:
        body = json.loads(item.body)
        if model:
            body["model"] = model
        if job.format == "anthropic":
            rows.append({"custom_id": item.custom_id, "params": body})
        else:
            rows.append(
                {"custom_id": item.custom_id, "method": "POST", "url": job.endpoint, "body": body}
            )
    return job, rows


@app.command()
def submit(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A JSONL batch file (Anthropic or OpenAI lines).")
    ],
    *,
    format_: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT", help="anthropic or openai [detected]."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(metavar="NAME", help="Run on this configured backend.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Use this model for every request.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the batch to end.")] = False,
    as_json: JSON = False,
    url: URL = None,
    api_key: KEY = None,
) -> None:
    """Send a batch file to a running proxy; prints the batch id."""
    remote = Remote(url, api_key)
    job, rows = _submit_body(file.read_bytes(), format_ or "", model)
    prefix = f"/{backend}" if backend else ""
    if job.format == "anthropic":
        obj = remote.call("POST", f"{prefix}/v1/messages/batches", json={"requests": rows})
    else:
        content = b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"
        files = {"file": (file.name, content, "application/jsonl")}
        uploaded = remote.call("POST", "/v1/files", data={"purpose": "batch"}, files=files)
        create = {
            "input_file_id": uploaded["id"],
            "endpoint": job.endpoint,
            "completion_window": "24h",
        }
        obj = remote.call("POST", f"{prefix}/v1/batches", json=create)
    if wait:
        _watch(remote, obj["id"])
        obj = remote.status(obj["id"])
    if as_json or wait:
        _print(obj, as_json)
    else:
        typer.echo(obj["id"])


@app.command()
def status(batch_id: BatchId, as_json: JSON = False, url: URL = None, api_key: KEY = None) -> None:
    """Show a batch."""
    _print(Remote(url, api_key).status(batch_id), as_json)


@app.command("list")
def list_(as_json: JSON = False, url: URL = None, api_key: KEY = None) -> None:
    """List your batches, newest first (both APIs)."""
    remote = Remote(url, api_key)
    found = (
        remote.call("GET", "/v1/messages/batches")["data"]
        + remote.call("GET", "/v1/batches")["data"]
    )
    found.sort(key=_created, reverse=True)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    from datetime import UTC, datetime

    from anyllm_cli.cli import _console

    rows = []
    for obj in found:
        done, failed, total, _ = _counts(obj)
        created = datetime.fromtimestamp(_created(obj), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        status = obj.get("processing_status") or obj.get("status") or "?"
        rows.append([obj["id"], status, str(done), str(failed), str(total), created])
    columns = ["id", "status", "done", "failed", "total", "created"]
    _console.table(_console.stdout(), columns, rows)


@app.command()
def wait(batch_id: BatchId, url: URL = None, api_key: KEY = None) -> None:
    """Watch a batch until it ends (Ctrl-C leaves it running)."""
    remote = Remote(url, api_key)
    _watch(remote, batch_id)
    _print(remote.status(batch_id), False)


@app.command()
def results(
    batch_id: BatchId,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here [stdout].")
    ] = None,
    url: URL = None,
    api_key: KEY = None,
) -> None:
    """The results of an ended batch, as JSONL (OpenAI: output lines, then error lines)."""
    data = Remote(url, api_key).results(batch_id)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)


@app.command()
def cancel(batch_id: BatchId, as_json: JSON = False, url: URL = None, api_key: KEY = None) -> None:
    """Cancel a batch: items not yet ended end as canceled."""
    obj = Remote(url, api_key).call("POST", _path(batch_id) + "/cancel")
    _print(obj, as_json)


@app.command()
def run(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A JSONL batch file (Anthropic or OpenAI lines).")
    ],
    *,
    backend: Annotated[
        str, typer.Option(metavar="NAME", help="The backend to run on (as for `serve`).")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Results [stdout].")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(metavar="N", help="Requests in flight [[batch] concurrency, 64].")
    ] = None,
    base_url: Annotated[str | None, typer.Option(metavar="URL", help="Upstream base URL.")] = None,
    model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Use this model for every request.")
    ] = None,
    config: Annotated[
        str | None, typer.Option(metavar="FILE", help="TOML file with [backends.NAME].")
    ] = None,
    env_file: Annotated[
        str | None, typer.Option(metavar="FILE", help="Env file [.anyllm.env].")
    ] = None,
    lease: Annotated[float | None, typer.Option(hidden=True, help="Item lease, seconds.")] = None,
) -> None:
    """Run a batch file in-process against a backend; run it again after a crash to resume."""
    import anyio

    from anyllm_cli.config import load_settings

    flags = {"backend": backend, "base_url": base_url, "config": config, "env_file": env_file}
    settings = load_settings({k: v for k, v in flags.items() if v}, os.environ, cwd=Path.cwd())
    data = file.read_bytes()
    if model:
        _, rows = _submit_body(data, "", model)
        data = b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"
    from anyllm_cli.cli._batch_run import run_local

    out = sys.stdout.buffer if output is None else output.open("wb")
    try:
        anyio.run(run_local, settings, data, out, concurrency, lease)
    finally:
        if output is not None:
            out.close()
