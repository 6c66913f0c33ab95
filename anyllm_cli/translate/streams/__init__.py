"""Stream translators: state machines with `feed(event) -> list[event]` and `finish() -> list[event]`."""
