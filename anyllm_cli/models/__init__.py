"""Wire schemas, one module per API. Pure: standard library and pydantic only."""
