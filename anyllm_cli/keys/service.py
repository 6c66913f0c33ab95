"""The key-management service, as the CLI and the admin API see it: one shape, two places.

    KeyService (Protocol)  create, list, show, update, revoke, rotate, delete, spend -> JSON-ready dicts
      LocalKeys            on a store opened here (the CLI's default; the admin API's handlers)
      RemoteKeys           on a running proxy through its admin API (`anyllm keys --url`)

Every answer is plain JSON (the `key_view` shape, a spend row), so `--json`, the tables and the HTTP
API show the same fields. A secret appears only in the answer to `create` and `rotate`.

What it gives up: listing is not paginated (a team's keys fit in one answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from anyllm_cli.keys import manage
from anyllm_cli.keys.manage import KeyOptions
from anyllm_cli.stores import SpendGroup, Store

View = dict[str, Any]


class KeyService(Protocol):
    async def create(self, options: KeyOptions) -> tuple[View, str]: ...
    async def list_keys(self, include_inactive: bool) -> list[View]: ...
    async def show(self, ref: str) -> View: ...
    async def update(self, ref: str, options: KeyOptions) -> View: ...
    async def revoke(self, ref: str) -> View: ...
    async def rotate(self, ref: str) -> tuple[View, str]: ...
    async def delete(self, ref: str) -> View: ...
    async def spend(self, ref: str | None, since: str | None, by: SpendGroup) -> list[View]: ...


class LocalKeys:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def _view(self, record: Any) -> View:
        now = self._clock()
        return manage.key_view(record, await manage.spent_now(self.store, record, now), now)

    async def create(self, options: KeyOptions) -> tuple[View, str]:
        record, secret = await manage.create(self.store, options, self._clock())
        return await self._view(record), secret

    async def list_keys(self, include_inactive: bool) -> list[View]:
        now = self._clock()
        records = await self.store.list_keys()
        chosen = [r for r in records if include_inactive or r.status(now) == "active"]
        return [await self._view(r) for r in chosen]

    async def show(self, ref: str) -> View:
        return await self._view(await manage.find(self.store, ref))

    async def update(self, ref: str, options: KeyOptions) -> View:
        return await self._view(await manage.update(self.store, ref, options))

    async def revoke(self, ref: str) -> View:
        return await self._view(await manage.revoke(self.store, ref, self._clock()))

    async def rotate(self, ref: str) -> tuple[View, str]:
        record, secret = await manage.rotate(self.store, ref)
        return await self._view(record), secret

    async def delete(self, ref: str) -> View:
        record = await manage.delete(self.store, ref)
        return manage.key_view(record, None, self._clock())

    async def spend(self, ref: str | None, since: str | None, by: SpendGroup) -> list[View]:
        key_id = (await manage.find(self.store, ref)).id if ref else None
        day = manage.parse_since(since, self._clock())
        rows = [asdict(row) for row in await self.store.spend(key_id, day, by)]
        if by == "key":  # the name beside the id (None once the key is deleted)
            names = {record.id: record.name for record in await self.store.list_keys()}
            for row in rows:
                row["name"] = names.get(row["group"])
        return rows
