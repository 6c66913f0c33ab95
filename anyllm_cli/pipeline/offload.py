"""CPU-heavy steps of big requests run in a worker thread, so one big body does not stall the others.

Every request shares one event loop per worker process. Parsing a request body and counting its
tokens take time linear in its size (a 24 MB `count_tokens` body: ~0.1 s to parse, ~2 s to count on
a small machine), and on the loop that time is a pause for every other request, stream and ping.
Above `OFF_LOOP_BYTES` the step runs in anyio's worker threads instead; below it the thread hop
would cost more than it saves.

What it gives up: threads share the GIL, so this only helps where the work lets go of it often:
Python code does, and the token counter is fed in small pieces so it does too (`tokens.py`). One
call into native code with a huge argument (pydantic-core decoding one 24 MB string) still holds
the GIL throughout, and the JSON for the upstream is encoded on the loop (`backends/_http.py`):
measured in `tests/bench/bench_stall.py`, and the reason the README gives for lowering
`max_body_bytes` where latency matters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

OFF_LOOP_BYTES = 512 * 1024


async def off_loop(size: int, fn: Callable[[*Ts], T], *args: *Ts) -> T:
    """`fn(*args)`, in a worker thread when the request it works on is over `OFF_LOOP_BYTES`."""
    if size <= OFF_LOOP_BYTES:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args)
