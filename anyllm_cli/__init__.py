"""anyllm: an LLM API gateway. Clients speak one LLM API; their model speaks another."""

__version__ = "0.1.0"
