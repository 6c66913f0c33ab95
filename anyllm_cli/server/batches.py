"""Batch and file endpoints: Anthropic Message Batches and OpenAI Files/Batches over one engine.

| route                                          | handler                                     |
| ---------------------------------------------- | ------------------------------------------- |
| POST   [/NAME]/v1/messages/batches             | validate, persist, wake the engine           |
| GET    /v1/messages/batches[/{id}]             | list (after_id or before_id, limit) / one    |
| POST   /v1/messages/batches/{id}/cancel        | cancel                                       |
| DELETE /v1/messages/batches/{id}               | delete an ended batch                        |
| GET    /v1/messages/batches/{id}/results       | JSONL, in input order                        |
| POST   /v1/files  GET /v1/files[/{id}[/content]] DELETE /v1/files/{id} | batch input files; output and error files are the batches' results (deleting one scrubs them) |
| POST   [/NAME]/v1/batches  GET /v1/batches[/{id}]  POST /v1/batches/{id}/cancel |          |

A batch and a file belong to the principal that created them: anyone else gets a 404, as if it did
not exist. The engine starts in `start()`, called from the app's lifespan with the store it opened;
until then (or without a store) the routes answer with an error. A batch whose models all route to
one backend with `batch = "native"` and a batch API of its format is created in mode "native":
the `NativeRunner` (batch/native.py) hands it to that API instead of the engine running it. Bad
input is a 4xx in the caller's API format, with the line numbers of every bad line; a model the router cannot place, or a virtual
key's allow-lists refuse, refuses the batch before it is stored, as does a Responses or Embeddings
batch bound for a backend that does not speak the OpenAI API.

Lists are newest first. Anthropic's pages go both ways, as its SDK's `SyncPage` follows them:
`after_id` reads older batches, `before_id` the newer ones just before the cursor; `has_more` says
whether more lie in the direction asked, and `first_id` / `last_id` are the page's ends. OpenAI's
`GET /v1/batches` pages with `after` (its SDK's `CursorPage` passes the last id).

What it gives up: a file is held in memory while it is validated (the server's body limit applies
to uploads).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from fnmatch import fnmatchcase
from typing import Any, cast

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from anyllm_cli.batch import anthropic, jobs, openai
from anyllm_cli.batch.engine import Engine, EngineSettings, Runner
from anyllm_cli.batch.job import BatchJob
from anyllm_cli.batch.native import NativeRunner, NativeSettings, choose
from anyllm_cli.config import BackendSettings, BatchSettings
from anyllm_cli.errors import AnyllmError, ErrorKind, InvalidInput, NotFound, Refused, StoreError
from anyllm_cli.keys.guard import check_budget
from anyllm_cli.keys.manage import spent_now
from anyllm_cli.models.batches import BatchCreate, DeletedMessageBatch, FileDeleted, FileList
from anyllm_cli.pipeline import Pipeline
from anyllm_cli.pipeline.seams import ANONYMOUS, Candidate, ClientRequest, Principal, Router
from anyllm_cli.server.context import PRINCIPAL_KEY, context
from anyllm_cli.server.formats import ClientFormat, dump_json, render_error
from anyllm_cli.stores import KeyStore, UsageStore
from anyllm_cli.stores.batches import Batches, BatchRecord, FileRecord, batches_of

MAX_LIST = 1000
MAX_FILES = 10_000  # OpenAI's own default and most for GET /v1/files


def _json(body: Any, status: int = 200) -> Response:
    return Response(dump_json(body), status, media_type="application/json")


def _principal(request: Request) -> Principal:
    found = request.scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS


def _limit(request: Request, *, default: int = 20, most: int = MAX_LIST) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidInput(f"limit must be an integer from 1 to {most}", "limit")
    return int(raw)


class BatchAPI:
    """The handlers and what they share once started: the store and the engine."""

    def __init__(
        self, backends: Mapping[str, BackendSettings], config: BatchSettings | None = None
    ) -> None:
        self._backends = backends
        self._settings = EngineSettings.of(config or BatchSettings())
        self._native_settings = NativeSettings.of(config or BatchSettings())
        self.batches: Batches | None = None
        self.engine: Engine | None = None
        self.native: NativeRunner | None = None
        self._router: Router | None = None
        self._keys: KeyStore | None = None

    async def start(self, stack: AsyncExitStack, store: object | None, runner: Runner) -> None:
        """Run the engine over the app's store until the stack closes (before the store closes)."""
        if store is None:
            return
        self.batches = batches_of(store)
        self._keys = cast(KeyStore, store) if hasattr(store, "get_key") else None
        self.engine = Engine(self.batches, runner, self._settings)
        self._router = getattr(runner, "router", None)
        tg = await stack.enter_async_context(anyio.create_task_group())
        tg.start_soon(self.engine.run)
        if isinstance(runner, Pipeline):  # batches handed to a backend's own batch API
            self.native = NativeRunner(self.batches, runner, self._native_settings)
            tg.start_soon(self.native.run)
        stack.callback(tg.cancel_scope.cancel)
        stack.callback(setattr, self, "batches", None)

    # -- shared -----------------------------------------------------------------------------------

    def _store(self) -> Batches:
        if self.batches is None:
            raise StoreError("batches need the store, which is not open")
        return self.batches

    async def _mine(self, request: Request, batch_id: str, fmt: str) -> BatchRecord:
        record = await self._store().get_batch(batch_id)
        if record is None or record.owner != _principal(request).id or record.format != fmt:
            raise NotFound(f"no batch {batch_id!r}")
        return record

    def _backend(self, request: Request) -> str | None:
        name = request.path_params.get("backend")
        if name is not None and name not in self._backends:
            raise NotFound(f"no backend named {name!r}")
        return str(name) if name is not None else None

    async def _create(self, request: Request, job: BatchJob, **kw: Any) -> BatchRecord:
        principal, backend = _principal(request), self._backend(request)
        if self._router is not None:  # a model no backend serves, or the key may not use
            probe = ClientRequest(api=job.api, body=b"", backend=backend, principal=principal)
            kinds = {name: b.kind for name, b in self._backends.items()}
            for candidate in jobs.candidates(job, self._router, probe, kinds):
                await self._check_key(principal, candidate)
        await self._check_budget(principal)
        mode, native = "local", None
        if self._router is not None and self.native is not None:
            native = choose(job, backend, principal, self._router, self._backends)
        if native is not None:
            backend, mode = native, "native"
        record = await jobs.create(self._store(), job, principal, backend=backend, mode=mode, **kw)
        self._wake()
        return record

    def _wake(self) -> None:
        if self.engine is not None:
            self.engine.wake()
        if self.native is not None:
            self.native.wake()

    async def _check_key(self, principal: Principal, candidate: Candidate) -> None:
        """A virtual key's allow-lists, checked before the batch is accepted (the guard checks
        them again, with limits and budget, when each item runs)."""
        if self._keys is None or principal.kind != "virtual":
            return
        record = await self._keys.get_key(principal.id)
        if record is None:
            return
        names = (candidate.requested_model, candidate.upstream_model)
        if record.models and not any(fnmatchcase(n, p) for p in record.models for n in names):
            raise Refused(
                ErrorKind.PERMISSION,
                f"this API key may not use model {candidate.requested_model!r}",
            )
        if record.backends and not any(fnmatchcase(candidate.backend, p) for p in record.backends):
            raise Refused(
                ErrorKind.PERMISSION, f"this API key may not use backend {candidate.backend!r}"
            )

    async def _check_budget(self, principal: Principal) -> None:
        """A key whose budget is used up starts no batch (a native one would spend unchecked: the
        provider runs its items, not the guard)."""
        if self._keys is None or principal.kind != "virtual":
            return
        record = await self._keys.get_key(principal.id)
        if record is None or record.budget_usd is None:
            return
        now = time.time()
        check_budget(record, await spent_now(cast(UsageStore, self._keys), record, now), now)

    async def _page(
        self, request: Request, fmt: str, *, after: str | None, before: str | None = None
    ) -> tuple[list[BatchRecord], bool]:
        """A page of the caller's batches of one format, newest first, and whether more lie in
        the direction asked (older with `after`, newer with `before`)."""
        if after is not None and before is not None:
            raise InvalidInput("give after_id or before_id, not both", "before_id")
        limit = _limit(request)
        rows = await self._store().list_batches(
            _principal(request).id, limit=limit + 1, after=after, before=before, fmt=fmt
        )
        more = len(rows) > limit
        if before is not None:  # the extra row is the farthest from the cursor: the oldest
            return rows[-limit:] if more else rows, more
        return rows[:limit], more

    # -- Anthropic Message Batches ----------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def create_message_batch(self, request: Request) -> Response:
        job = anthropic.from_create(await request.body())
        return _json(anthropic.message_batch(await self._create(request, job), self._base(request)))

    async def list_message_batches(self, request: Request) -> Response:
        query = request.query_params
        page, more = await self._page(
            request, "anthropic", after=query.get("after_id"), before=query.get("before_id")
        )
        data = [anthropic.message_batch(r, self._base(request)) for r in page]
        first, last = (page[0].id, page[-1].id) if page else (None, None)
        return _json({"data": data, "has_more": more, "first_id": first, "last_id": last})

    async def get_message_batch(self, request: Request) -> Response:
        record = await self._mine(request, request.path_params["batch_id"], "anthropic")
        return _json(anthropic.message_batch(record, self._base(request)))

    async def cancel_message_batch(self, request: Request) -> Response:
        record = await self._cancel(request, "anthropic")
        return _json(anthropic.message_batch(record, self._base(request)))

    async def delete_message_batch(self, request: Request) -> Response:
        record = await self._mine(request, request.path_params["batch_id"], "anthropic")
        if record.ended is None:
            raise InvalidInput(f"batch {record.id} is still processing: cancel it first")
        await self._store().delete_batch(record.id)
        return _json(DeletedMessageBatch(id=record.id).dump())

    async def message_batch_results(self, request: Request) -> Response:
        record = await self._mine(request, request.path_params["batch_id"], "anthropic")
        if record.ended is None:
            raise InvalidInput(f"batch {record.id} has not ended: results are not ready yet")
        return StreamingResponse(
            jobs.result_bytes(self._store(), record), media_type="application/x-jsonl"
        )

    async def _cancel(self, request: Request, fmt: str) -> BatchRecord:
        record = await self._mine(request, request.path_params["batch_id"], fmt)
        await self._store().cancel(record.id, time.time())
        self._wake()
        return await self._store().get_batch(record.id) or record

    # -- OpenAI Files -----------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        async with request.form(max_part_size=256 * 1024 * 1024) as form:
            purpose = form.get("purpose")
            upload = form.get("file")
            if purpose != "batch":
                raise InvalidInput("only purpose=batch files are accepted here", "purpose")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("send the file as the multipart field 'file'", "file")
            content = await upload.read()
            name = upload.filename or "batch.jsonl"
        try:
            content.decode()
        except UnicodeDecodeError:
            raise InvalidInput("a batch file is UTF-8 JSONL", "file") from None
        record = FileRecord(
            "file-" + uuid.uuid4().hex[:24],
            _principal(request).id,
            name,
            "batch",
            len(content),
            time.time(),
        )
        await self._store().put_file(record, content)
        return _json(openai.file_object(record))

    async def _result_file(self, request: Request, file_id: str) -> tuple[BatchRecord, bool]:
        """The batch behind an output or error file id, and whether it is the error file. Such a
        file exists once its batch object names it (the batch ended with lines for it), until it
        is deleted: a 404 otherwise, as for any file id that does not exist."""
        batch_id, errors = openai.result_file_of(file_id) or ("", False)
        try:
            record = await self._mine(request, batch_id, "openai")
        except NotFound:
            raise NotFound(f"no file {file_id!r}") from None
        named = openai.batch_object(record).get("error_file_id" if errors else "output_file_id")
        if named != file_id or file_id in await self._store().deleted_results(batch_id):
            raise NotFound(f"no file {file_id!r}")
        return record, errors

    async def _file(self, request: Request) -> tuple[FileRecord, bytes]:
        file_id = request.path_params["file_id"]
        if openai.result_file_of(file_id) is not None:
            record, errors = await self._result_file(request, file_id)
            content = b"".join(
                [c async for c in jobs.result_bytes(self._store(), record, errors=errors)]
            )
            name = f"{record.id}_{'error' if errors else 'output'}.jsonl"
            meta = FileRecord(
                file_id, record.owner, name, "batch_output", len(content), record.ended or 0
            )
            return meta, content
        found = await self._uploaded(request, file_id)
        return found, await self._store().file_content(file_id) or b""

    async def _uploaded(self, request: Request, file_id: str) -> FileRecord:
        found = await self._store().get_file(file_id)
        if found is None or found.owner != _principal(request).id:
            raise NotFound(f"no file {file_id!r}")
        return found

    async def get_file(self, request: Request) -> Response:
        record, _ = await self._file(request)
        return _json(openai.file_object(record))

    async def file_content(self, request: Request) -> Response:
        _, content = await self._file(request)
        return Response(content, media_type="application/octet-stream")

    async def list_files(self, request: Request) -> Response:
        """The caller's uploaded files, OpenAI's way: `purpose`, `order` (by creation, `desc` by
        default), `limit` (up to 10,000, the default) and `after` (the last id of the page
        before). A batch's output and error files are reached through the batch, not listed."""
        query = request.query_params
        limit = _limit(request, default=MAX_FILES, most=MAX_FILES)
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidInput("order must be asc or desc", "order")
        rows = await self._store().list_files(_principal(request).id, purpose=query.get("purpose"))
        if order == "asc":
            rows.reverse()  # the store gives the newest first
        after = query.get("after")
        if after is not None:
            at = next((n for n, row in enumerate(rows) if row.id == after), None)
            if at is None:
                raise InvalidInput(f"no file {after!r} to list after", "after")
            rows = rows[at + 1 :]
        page = rows[:limit]
        data = [openai.file_object(r) for r in page]
        first, last = (page[0].id, page[-1].id) if page else (None, None)
        listed = FileList(data=[], has_more=len(rows) > limit, first_id=first, last_id=last)
        return _json(listed.dump() | {"data": data})

    async def delete_file(self, request: Request) -> Response:
        """An input file, or a batch's output or error file: its content is gone afterwards (the
        results it held are scrubbed), while the batch and its counts stay."""
        file_id = request.path_params["file_id"]
        if openai.result_file_of(file_id) is not None:
            record, errors = await self._result_file(request, file_id)
            await self._store().delete_results(record.id, file_id, errors=errors, now=time.time())
        else:
            await self._store().delete_file((await self._uploaded(request, file_id)).id)
        return _json(FileDeleted(id=file_id, deleted=True).dump())

    # -- OpenAI Batches ---------------------------------------------------------------------------

    async def create_batch(self, request: Request) -> Response:
        create = BatchCreate.parse(await request.body())
        found = await self._uploaded(request, create.input_file_id)
        window = openai.window_seconds(create.completion_window)
        del window  # checked here, before the file is read
        data = await self._store().file_content(found.id) or b""
        job = openai.from_jsonl(data, endpoint=create.endpoint)
        record = await self._create(
            request,
            job,
            window=create.completion_window,
            input_file_id=found.id,
            metadata=create.metadata,
        )
        return _json(openai.batch_object(record))

    async def list_batches(self, request: Request) -> Response:
        page, more = await self._page(request, "openai", after=request.query_params.get("after"))
        data = [openai.batch_object(r) for r in page]
        first, last = (page[0].id, page[-1].id) if page else (None, None)
        body = {
            "object": "list",
            "data": data,
            "has_more": more,
            "first_id": first,
            "last_id": last,
        }
        return _json(body)

    async def get_batch(self, request: Request) -> Response:
        record = await self._mine(request, request.path_params["batch_id"], "openai")
        return _json(openai.batch_object(record))

    async def cancel_batch(self, request: Request) -> Response:
        return _json(openai.batch_object(await self._cancel(request, "openai")))


def _guarded(api: BatchAPI, handler: Any, fmt: ClientFormat) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except AnyllmError as exc:
            ctx = context(request.scope)
            use = ctx.fmt if ctx is not None else fmt
            param = exc.path or None if isinstance(exc, InvalidInput) else None
            status, headers, body = render_error(use, exc.kind, exc.message, param=param)
            if ctx is not None:
                ctx.error_message = exc.message
            return Response(
                body, status, headers=dict((k.decode(), v.decode()) for k, v in headers)
            )

    return endpoint


def routes(api: BatchAPI) -> list[Route]:
    """The batch and file routes, to mount before the passthrough."""
    a, o = ClientFormat.ANTHROPIC, ClientFormat.OPENAI

    def r(
        path: str, handler: Any, method: str, fmt: ClientFormat, *, named: bool = True
    ) -> list[Route]:
        # every route under /NAME/ too, so an SDK whose base URL names a backend (to pin its
        # batches there) can also read, cancel and fetch them; only a create uses the name
        out = [Route(path, _guarded(api, handler, fmt), methods=[method])]
        if named:
            out.append(Route("/{backend}" + path, _guarded(api, handler, fmt), methods=[method]))
        return out

    mb = "/v1/messages/batches"
    return [
        *r(mb, api.create_message_batch, "POST", a, named=True),
        *r(mb, api.list_message_batches, "GET", a),
        *r(mb + "/{batch_id}", api.get_message_batch, "GET", a),
        *r(mb + "/{batch_id}", api.delete_message_batch, "DELETE", a),
        *r(mb + "/{batch_id}/cancel", api.cancel_message_batch, "POST", a),
        *r(mb + "/{batch_id}/results", api.message_batch_results, "GET", a),
        *r("/v1/files", api.upload_file, "POST", o),
        *r("/v1/files", api.list_files, "GET", o),
        *r("/v1/files/{file_id}", api.get_file, "GET", o),
        *r("/v1/files/{file_id}", api.delete_file, "DELETE", o),
        *r("/v1/files/{file_id}/content", api.file_content, "GET", o),
        *r("/v1/batches", api.create_batch, "POST", o, named=True),
        *r("/v1/batches", api.list_batches, "GET", o),
        *r("/v1/batches/{batch_id}", api.get_batch, "GET", o),
        *r("/v1/batches/{batch_id}/cancel", api.cancel_batch, "POST", o),
    ]
