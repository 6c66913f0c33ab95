"""Big requests' CPU steps run in a worker thread; small ones stay on the loop."""

from __future__ import annotations

import threading

import pytest

from anyllm_cli.pipeline.offload import OFF_LOOP_BYTES, off_loop

pytestmark = pytest.mark.anyio


async def test_small_work_stays_on_the_loop_and_big_work_leaves_it() -> None:
    here = threading.get_ident()
    assert await off_loop(OFF_LOOP_BYTES, threading.get_ident) == here
    assert await off_loop(OFF_LOOP_BYTES + 1, threading.get_ident) != here
    assert await off_loop(OFF_LOOP_BYTES + 1, divmod, 7, 2) == (3, 1)
