"""The proxy's HTTP side: the Starlette app, its middleware, stream delivery and the Hypercorn runner.

Everything here is I/O around `anyllm_cli.pipeline`, which owns the request path itself.
"""
