"""Recording and replay: capture exchanges at the pipeline's completion point, send them again.

    serve --record ──Recorder (a CallObserver)──> cassette JSONL ──read──> Exchange
    Exchange ──Sender (in-process Pipeline, or a proxy URL)──> Sent ──compare / report──> summary

`cassette` is the recording format and its readers (recorded JSONL, plain JSONL of request bodies,
HAR); `redact` scrubs credentials; `recorder` writes off the hot path; `client` re-sends; `engine`
drives the senders with a concurrency and rate; `compare` and `report` judge the results.
"""
