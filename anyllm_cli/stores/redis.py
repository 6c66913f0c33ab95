"""Rate-limit windows and in-flight counters in Redis, shared by every proxy instance (`redis://`).

Per key, three sorted sets under `{prefix}{key_id}:`: `r` (one member per admitted request, scored
by time), `t` (one member per finished call, `ticket:tokens`, scored by time) and `p` (in-flight
tickets, scored by their lease's expiry), and `s`, the running sum of `t`'s tokens (a release adds
to it, a prune subtracts what it removes; rebuilt from `t` if missing), so a decision costs the same
however many calls the window holds. One Lua script prunes, counts and takes a slot atomically,
so 50 concurrent requests against rpm=10 admit exactly 10 across any number of instances. A
reservation of several slots (`want`, see `_sql.lease_size`) adds members `ticket`, `ticket:2`, ...;
giving back removes the unused ones. The clock
is the caller's (`now`), as in the SQL limiter; instances must agree on time to the second.

What it gives up: keys and spend stay in the SQL store; only the hot counters live here.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from anyllm_cli.config import safe_url
from anyllm_cli.errors import StoreError
from anyllm_cli.stores import Decision, Limits
from anyllm_cli.stores._sql import LEASE_S, LEASE_SHARE, MAX_LEASE, WINDOW_S, decide

# KEYS: r, t, p, s (sum of t). ARGV: now, window, rpm, tpm, parallel, lease, ticket (-1 = no limit),
# want, share, max (the reservation's size, the rule of `lease_size`).
_ACQUIRE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, par = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local function tokens_of(members)
  local sum = 0
  for _, m in ipairs(members) do sum = sum + tonumber(string.match(m, ':(%d+)$')) end
  return sum
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[4], tokens_of(redis.call('ZRANGE', KEYS[2], 0, -1)))
end
local gone = tokens_of(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window))
if gone > 0 then redis.call('DECRBY', KEYS[4], gone) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local requests = redis.call('ZCARD', KEYS[1])
local oldest_r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or ''
local tokens = tonumber(redis.call('GET', KEYS[4]))
local oldest_t = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2] or ''
local parallel = redis.call('ZCARD', KEYS[3])
local ok = 1
if rpm >= 0 and requests >= rpm then ok = 0 end
if tpm >= 0 and tokens >= tpm then ok = 0 end
if par >= 0 and parallel >= par then ok = 0 end
local grant = 1
if ok == 1 and tonumber(ARGV[8]) > 1 and par < 0 and (tpm < 0 or (tpm - tokens) * 4 >= tpm) then
  grant = math.min(tonumber(ARGV[8]), tonumber(ARGV[10]))
  if rpm >= 0 then grant = math.min(grant, math.floor((rpm - requests) / tonumber(ARGV[9]))) end
  if grant < 1 then grant = 1 end
end
if ok == 1 then
  if rpm >= 0 then
    local members = {now, ARGV[7]}
    for i = 2, grant do
      members[#members + 1] = now
      members[#members + 1] = ARGV[7] .. ':' .. i
    end
    redis.call('ZADD', KEYS[1], unpack(members))
  end
  if par >= 0 then redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[7]) end
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[6]) + window)) end
return {ok, requests, tostring(tokens), parallel, oldest_r, oldest_t, grant}
"""

# KEYS: r. ARGV: ticket, granted, unused: the last `unused` members of a reservation leave.
_GIVE_BACK = """
local granted, unused = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = granted - unused + 1, granted do
  if i == 1 then redis.call('ZREM', KEYS[1], ARGV[1])
  else redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. i) end
end
return 1
"""

_RELEASE = """
redis.call('ZREM', KEYS[3], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  if redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. ':' .. ARGV[2]) == 1
      and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('INCRBY', KEYS[4], ARGV[2])
  end
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])))
  redis.call('EXPIRE', KEYS[4], math.ceil(tonumber(ARGV[4])))
end
return 1
"""


def _limit(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    def __init__(self, client: Any, url: str, prefix: str) -> None:
        self._client = client
        self.url = safe_url(url)
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._give_back = client.register_script(_GIVE_BACK)

    @classmethod
    async def open(cls, url: str, prefix: str = "anyllm:limits:") -> RedisLimiter:
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError
        except ImportError:
            raise StoreError(
                "Redis needs the redis extra: pip install 'anyllm-cli[redis]'"
            ) from None
        client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"{safe_url(url)}: cannot connect to Redis ({exc})") from None
        return cls(client, url, prefix)

    def _keys(self, key_id: str) -> list[str]:
        base = f"{self.prefix}{{{key_id}}}:"  # one hash slot per key for Redis Cluster
        return [base + "r", base + "t", base + "p", base + "s"]

    async def acquire(self, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
        from redis.exceptions import RedisError

        ticket = uuid.uuid4().hex
        args: list[float | str] = [now, WINDOW_S, _limit(limits.rpm), _limit(limits.tpm)]
        args += [_limit(limits.max_parallel), LEASE_S, ticket, want, LEASE_SHARE, MAX_LEASE]
        try:
            ok, requests, tokens, parallel, oldest_r, oldest_t, grant = await self._acquire(
                keys=self._keys(key_id), args=args
            )
        except RedisError as exc:
            raise StoreError(f"{self.url}: {exc}") from None
        taken: list[int] = []
        decision = decide(
            limits,
            requests=int(requests),
            tokens=int(tokens),
            parallel=int(parallel),
            requests_reset=float(oldest_r) + WINDOW_S - now if oldest_r else 0.0,
            tokens_reset=float(oldest_t) + WINDOW_S - now if oldest_t else 0.0,
            take=lambda _, granted: taken.append(granted),
            want=want,
        )
        if decision.allowed != bool(ok) or taken not in ([], [int(grant)]):
            # cannot happen: the script applies the same rule
            raise StoreError(f"{self.url}: the limiter script and rule disagree")
        return replace(decision, ticket=ticket) if decision.allowed else decision

    async def release(self, key_id: str, ticket: str, tokens: int, now: float) -> None:
        from redis.exceptions import RedisError

        try:
            await self._release(
                keys=self._keys(key_id), args=[ticket, tokens, now, WINDOW_S + LEASE_S]
            )
        except RedisError as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    async def give_back(
        self, key_id: str, ticket: str, taken_at: float, granted: int, unused: int
    ) -> None:
        from redis.exceptions import RedisError

        if unused <= 0:
            return
        try:
            await self._give_back(keys=self._keys(key_id)[:1], args=[ticket, granted, unused])
        except RedisError as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    async def close(self) -> None:
        await self._client.aclose()
