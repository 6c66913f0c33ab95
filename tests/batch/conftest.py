"""The PostgreSQL schema fixture of the store tests, for the engine's shared-queue test."""

from tests.stores.conftest import pg_schema

__all__ = ["pg_schema"]
