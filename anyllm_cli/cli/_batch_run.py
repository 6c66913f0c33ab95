"""`anyllm batch run`'s composition root: backends, pipeline, store and engine, in one exit stack.

The batch id derives from the file's bytes, the backend and the local owner, so running the same
file again after a crash (or a Ctrl-C) finds the stored batch and continues it: items that ended keep
their results, items that were in flight are claimed again once their lease (handed back on a clean
stop) is free. Results go out in the file's own format, in input order.

What it gives up: no key limits (there is no caller key in-process); the pipeline's observers and
guard are the defaults.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import IO

import anyio

from anyllm_cli.backends import build_backend
from anyllm_cli.backends._http import build_client
from anyllm_cli.batch import jobs
from anyllm_cli.batch.engine import Engine, EngineSettings
from anyllm_cli.batch.job import load
from anyllm_cli.config import Settings
from anyllm_cli.pipeline import Pipeline
from anyllm_cli.pipeline.seams import ClientRequest, Principal
from anyllm_cli.routing import StaticRouter
from anyllm_cli.stores import open_store
from anyllm_cli.stores.batches import Batches, BatchRecord, batches_of

LOCAL = Principal("local", name="anyllm batch run", kind="anonymous")


def store_url(settings: Settings) -> str:
    if settings.store is not None:
        return settings.store.url
    return f"sqlite://{settings.home / 'anyllm.db'}"


async def _watch(batches: Batches, batch_id: str) -> None:
    from anyllm_cli.cli._console import BatchProgress

    bar = BatchProgress(batch_id)
    try:
        while True:
            record = await batches.get_batch(batch_id)
            if record is None:
                return
            c = record.counts
            bar.update(c.done, c.done - c.succeeded, c.total)
            if record.ended is not None:
                return
            await anyio.sleep(0.5)
    finally:
        bar.close()


async def run_local(
    settings: Settings,
    data: bytes,
    out: IO[bytes],
    concurrency: int | None = None,
    lease_s: float | None = None,
) -> None:
    job = load(data)
    async with AsyncExitStack() as stack:
        client = build_client()
        stack.push_async_callback(client.aclose)
        backends = {}
        for name, backend_settings in settings.backends.items():
            backends[name] = build_backend(backend_settings, client)
            stack.push_async_callback(backends[name].aclose)
        router = StaticRouter(settings.backends, settings.default_backend)
        pipeline = Pipeline(backends, router=router)
        store = await open_store(store_url(settings))
        stack.push_async_callback(store.close)
        batches = batches_of(store)
        backend = settings.default_backend
        batch_id = jobs.run_id(data, backend, LOCAL.id, job.format)
        record: BatchRecord | None = await batches.get_batch(batch_id)
        if record is None:  # refused up front: a passthrough batch for a non-OpenAI backend
            probe = ClientRequest(api=job.api, body=b"", principal=LOCAL)
            jobs.candidates(job, router, probe, {n: b.kind for n, b in settings.backends.items()})
            record = await jobs.create(batches, job, LOCAL, backend=backend, batch_id=batch_id)
        if record.ended is None:
            each = EngineSettings.of(
                settings.batch, concurrency=concurrency, per_batch=concurrency, lease_s=lease_s
            )
            engine = Engine(batches, pipeline, each)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch, batches, batch_id)
                await engine.run(until=batch_id)
            record = await batches.get_batch(batch_id) or record
        async for chunk in jobs.result_bytes(batches, record):
            out.write(chunk)
        out.flush()
