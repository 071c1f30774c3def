"""Files tests run on both stores: the PostgreSQL fixtures are the store tests' own."""

from tests.store.conftest import pg_url

__all__ = ["pg_url"]
