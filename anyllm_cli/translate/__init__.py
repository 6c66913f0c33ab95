"""Pure translation between LLM APIs. One module per route: <client>_via_<upstream>.py.

No I/O happens here: no network, no files, no clock, no randomness (ids and clocks are injected).
"""
