"""The admin API: keys and spend over HTTP, behind the master key (`Auth` checks it).

| route                                   | does                                                   |
| --------------------------------------- | ------------------------------------------------------ |
| POST   /admin/keys                      | create; 201 `{"key": SECRET, ...the key}`              |
| GET    /admin/keys[?all=true]           | `{"keys": [...]}` (active only unless all)            |
| GET    /admin/keys/{ref}                | one key (id or name)                                   |
| PATCH  /admin/keys/{ref}                | update; absent leaves a field, null clears it          |
| POST   /admin/keys/{ref}/revoke|rotate  | revoke; rotate answers `{"key": NEW_SECRET, ...}`      |
| DELETE /admin/keys/{ref}                | delete                                                 |
| GET    /admin/spend?key=&since=&by=     | `{"spend": [{group, (name,) requests, tokens, cost}]}` |
| POST   /key/generate, /key/update,      | LiteLLM's routes and field names (key_alias,           |
|        /key/delete; GET /key/info,      | rpm_limit, max_budget, budget_duration, duration...),  |
|        /key/list                        | so scripts written for LiteLLM keep working            |

Every answer is JSON; errors are `{"error": {"message", "type", ...}}` with the matching status. The
handlers are thin: they parse the body, call `LocalKeys` and return its answer.

What it gives up: LiteLLM's team, user and budget-table fields are accepted as metadata only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anyllm_cli.errors import AnyllmError, InvalidInput, StoreError, openai_error
from anyllm_cli.keys import manage
from anyllm_cli.keys.format import hash_secret, looks_like_key
from anyllm_cli.keys.service import LocalKeys
from anyllm_cli.server.formats import dump_json
from anyllm_cli.stores import Store

Handler = Callable[[Request], Awaitable[Response]]
_LITELLM_ONLY = ("duration", "key", "keys", "user_id", "team_id", "spend", "max_budget_duration")


def _JSON(body: Any, status: int = 200) -> Response:
    return Response(dump_json(body), status_code=status, media_type="application/json")


def _error(exc: AnyllmError) -> Response:
    status, body = openai_error(exc.kind, exc.message)
    return _JSON(body, status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object")
    return body


class Admin:
    """The handlers; `store` is the lifespan's (None until it opened)."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store

    def _keys(self) -> LocalKeys:
        store = self._store()
        if store is None:
            raise StoreError("the proxy has no key store")
        return LocalKeys(store)

    def handle(self, op: Callable[[Request, LocalKeys], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await op(request, self._keys())
            except AnyllmError as exc:
                return _error(exc)

        return endpoint

    # -- /admin ----------------------------------------------------------------------------------

    @staticmethod
    async def create(request: Request, keys: LocalKeys) -> Response:
        body = await _body(request)
        view, secret = await keys.create(manage.options_from_json(body, _now()))
        return _JSON({"key": secret, **view}, 201)

    @staticmethod
    async def list_keys(request: Request, keys: LocalKeys) -> Response:
        include = request.query_params.get("all", "").lower() in ("1", "true", "yes")
        return _JSON({"keys": await keys.list_keys(include)})

    @staticmethod
    async def show(request: Request, keys: LocalKeys) -> Response:
        return _JSON(await keys.show(request.path_params["ref"]))

    @staticmethod
    async def update(request: Request, keys: LocalKeys) -> Response:
        options = manage.options_from_json(await _body(request), _now())
        return _JSON(await keys.update(request.path_params["ref"], options))

    @staticmethod
    async def revoke(request: Request, keys: LocalKeys) -> Response:
        return _JSON(await keys.revoke(request.path_params["ref"]))

    @staticmethod
    async def rotate(request: Request, keys: LocalKeys) -> Response:
        view, secret = await keys.rotate(request.path_params["ref"])
        return _JSON({"key": secret, **view})

    @staticmethod
    async def delete(request: Request, keys: LocalKeys) -> Response:
        return _JSON(await keys.delete(request.path_params["ref"]))

    @staticmethod
    async def spend(request: Request, keys: LocalKeys) -> Response:
        q = request.query_params
        by = q.get("by", "key")
        if by not in ("key", "model", "backend", "day"):
            raise InvalidInput(f"by={by}: expected key, model, backend or day")
        rows = await keys.spend(q.get("key") or None, q.get("since") or None, by)  # type: ignore[arg-type]
        return _JSON({"spend": rows})

    # -- LiteLLM's /key routes --------------------------------------------------------------------

    @staticmethod
    async def _ref(keys: LocalKeys, given: Any) -> str:
        """LiteLLM names a key by its secret (or our id / name)."""
        if not isinstance(given, str) or not given:
            raise InvalidInput("key: expected the key (or its id)")
        if looks_like_key(given):
            record = await keys.store.find_key(hash_secret(given))
            if record is not None:
                return record.id
        return given

    @staticmethod
    async def generate(request: Request, keys: LocalKeys) -> Response:
        body = await _body(request)
        options = manage.options_from_json(_litellm(body), _now())
        if options.name is None:
            options = manage.KeyOptions(**{**options.changes(), "name": "litellm-key"})
        view, secret = await keys.create(options)
        return _JSON(_litellm_view(view, secret))

    @staticmethod
    async def key_update(request: Request, keys: LocalKeys) -> Response:
        body = await _body(request)
        ref = await Admin._ref(keys, body.get("key"))
        view = await keys.update(ref, manage.options_from_json(_litellm(body), _now()))
        return _JSON(_litellm_view(view, None))

    @staticmethod
    async def key_delete(request: Request, keys: LocalKeys) -> Response:
        body = await _body(request)
        given = body.get("keys") or body.get("key_aliases") or []
        if not isinstance(given, list):
            raise InvalidInput("keys: expected a list")
        deleted = [(await keys.delete(await Admin._ref(keys, k)))["id"] for k in given]
        return _JSON({"deleted_keys": deleted})

    @staticmethod
    async def key_info(request: Request, keys: LocalKeys) -> Response:
        ref = await Admin._ref(keys, request.query_params.get("key"))
        view = await keys.show(ref)
        return _JSON({"key": view["id"], "info": _litellm_view(view, None)})

    @staticmethod
    async def key_list(request: Request, keys: LocalKeys) -> Response:
        views = await keys.list_keys(True)
        return _JSON({"keys": [v["id"] for v in views], "total_count": len(views)})


def _now() -> float:
    import time

    return time.time()


def _litellm(body: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's body -> ours: `duration` is the expiry; its other own fields become metadata."""
    out = {k: v for k, v in body.items() if k not in _LITELLM_ONLY and k != "metadata"}
    if body.get("duration") is not None:
        out["expires"] = body["duration"]
    extra = {k: body[k] for k in ("user_id", "team_id") if body.get(k) is not None}
    meta = body.get("metadata")
    if extra or meta is not None:
        out["metadata"] = {**(meta if isinstance(meta, dict) else {}), **extra}
    return out


def _litellm_view(view: dict[str, Any], secret: str | None) -> dict[str, Any]:
    out = {
        **view,
        "token": view["id"],
        "key_alias": view["name"],
        "key_name": view["prefix"] + "...",
        "rpm_limit": view["rpm"],
        "tpm_limit": view["tpm"],
        "max_parallel_requests": view["max_parallel"],
        "max_budget": view["budget_usd"],
        "spend": view["spent_usd"],
    }
    if secret is not None:
        out["key"] = secret
    return out


def admin_routes(admin: Admin) -> list[Route]:
    h = admin.handle
    return [
        Route("/admin/keys", h(admin.create), methods=["POST"]),
        Route("/admin/keys", h(admin.list_keys), methods=["GET"]),
        Route("/admin/keys/{ref}", h(admin.show), methods=["GET"]),
        Route("/admin/keys/{ref}", h(admin.update), methods=["PATCH"]),
        Route("/admin/keys/{ref}", h(admin.delete), methods=["DELETE"]),
        Route("/admin/keys/{ref}/revoke", h(admin.revoke), methods=["POST"]),
        Route("/admin/keys/{ref}/rotate", h(admin.rotate), methods=["POST"]),
        Route("/admin/spend", h(admin.spend), methods=["GET"]),
        Route("/key/generate", h(admin.generate), methods=["POST"]),
        Route("/key/update", h(admin.key_update), methods=["POST"]),
        Route("/key/delete", h(admin.key_delete), methods=["POST"]),
        Route("/key/info", h(admin.key_info), methods=["GET"]),
        Route("/key/list", h(admin.key_list), methods=["GET"]),
    ]
