"""Batches on any backend: the two providers' formats as one `BatchJob`, and the engine that runs it.

    JSONL / create body ──anthropic.py | openai.py (pure, line-numbered errors)──> BatchJob
    BatchJob ──BatchStore (persisted before the batch is acknowledged)──> engine.py
    engine ──claim items under a lease──> Pipeline.run(stream=False) ──> one result per custom_id
    results ──anthropic.py | openai.py──> the caller's result lines
    a backend with `batch = "native"` ──native.py──> its provider's batch API, polled; results and
        costs (batch rates) through the same store and completion point

What it gives up: an item in flight when its process dies is sent to the upstream again after its
lease expires (at-least-once sending, exactly-once results).
"""
