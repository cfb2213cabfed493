/*
 * redis_scripts.cpp -- the Lua scripts (see redis_scripts.hpp).
 *
 * Both run atomically in Redis, which is what makes ids unique and
 * contiguous whichever server publishes, and a name's messages delivered
 * once whatever server its connections are on.  Lua strings are binary
 * safe, so payloads are any bytes.  Numbers are Lua doubles: ids and
 * epochs are exact below 2^53, and string.format('%d') prints them.
 *
 * publish
 *   KEYS  seq, log
 *   ARGV  channel, payload, flags, buffer (>= 1), buffer_bytes,
 *         message_ttl_ms (0 = no age limit), keys' expiry ms (0 = none)
 *   HINCRBY gives the id; 1 means a new life (the key was missing):
 *   the epoch is set to TIME in ms and any stale log is deleted.  XADD
 *   "0-<id>" with fields t (TIME ms), f (flags), e (when the message
 *   expires, ms; 0 = never), b (buffer), y (buffer_bytes: the publisher's
 *   limits, for the mirror's range reads) and d (payload), trimmed to
 *   `buffer` entries; both
 *   keys' expiry refreshed; PUBLISH on pushq:m:<channel> of the header
 *   "<epoch> <id> <flags> <buffer> <buffer_bytes> <message_ttl_ms>\n" and
 *   the payload.  Returns {id, epoch}.
 *
 * take
 *   KEYS  seq, log[, name's key]
 *   ARGV  has_last_id, last_id, has_cursor, cursor, max_msgs (>= 1),
 *         max_bytes, (unused), name's ttl ms (0 = delete, -1 = no expiry)
 *   The cursor is last_id when given, else the name's, else (the name's
 *   key expired) the connection's, else the newest id (a new name, or no
 *   name).  Above the newest id: reset, from the oldest buffered entry.
 *   Reads after the cursor, skipping the expired entries at the front;
 *   lost = the ids between the cursor and the first entry handed out (or
 *   the newest id when none is); hands out up to max_msgs entries and
 *   max_bytes of payload (at least one); stores the name's cursor.
 *   Returns {newest, epoch, lost, reset, cursor after,
 *            id1, flags1, data1, id2, ...}.
 *
 * range (the mirror catching up, pushq_redis_cmd_range)
 *   KEYS  seq, log
 *   ARGV  after_id, max_msgs (>= 1)
 *   Reads the entries with id > after_id, skipping the expired ones at
 *   the front (as take does: the reader counts them lost), up to max_msgs.
 *   more = 1 when the last entry returned is below the newest id.
 *   Returns {newest, epoch, now ms (TIME), more, after_id,
 *            id1, flags1, data1, time1, expiry1, buffer1, buffer_bytes1,
 *            id2, ...}
 *   (time: publish ms; expiry: ms, 0 = never; buffer and buffer_bytes ""
 *   for an entry written before they were).
 */

#include "redis_scripts.hpp"

#include "sha1.hpp"

namespace pushq {

namespace {

constexpr std::string_view publish_lua = R"LUA(
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch
if id == 1 then
  epoch = ms
  redis.call('HSET', KEYS[1], 'epoch', string.format('%d', epoch))
  redis.call('DEL', KEYS[2])
else
  epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
end
local ttl = tonumber(ARGV[6]) or 0
local ex = 0
if ttl > 0 then ex = ms + ttl end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], string.format('0-%d', id),
  't', string.format('%d', ms), 'f', ARGV[3], 'e', string.format('%d', ex),
  'b', ARGV[4], 'y', ARGV[5], 'd', ARGV[2])
local keep = tonumber(ARGV[7]) or 0
if keep > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', 'pushq:m:' .. ARGV[1],
  string.format('%d %d %s %s %s %s\n', epoch, id, ARGV[3], ARGV[4], ARGV[5],
                ARGV[6]) .. ARGV[2])
return {id, epoch}
)LUA";

constexpr std::string_view take_lua = R"LUA(
if redis.replicate_commands then pcall(redis.replicate_commands) end
local h = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local newest = tonumber(h[1]) or 0
local epoch = tonumber(h[2]) or 0
local cur
if ARGV[1] == '1' then
  cur = tonumber(ARGV[2]) or 0
else
  local v = false
  if KEYS[3] then v = redis.call('GET', KEYS[3]) end
  if v then
    cur = tonumber(v) or newest
  elseif ARGV[3] == '1' then
    cur = tonumber(ARGV[4]) or newest
  else
    cur = newest
  end
end
local reset = 0
if cur > newest then
  reset = 1
  local f = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #f > 0 then
    cur = tonumber(string.sub(f[1][1], 3)) - 1
  else
    cur = newest
  end
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local maxn = tonumber(ARGV[5]) or 1
if maxn < 1 then maxn = 1 end
local maxb = tonumber(ARGV[6]) or 0
local out = {}
local n, bytes = 0, 0
local first = nil
local pos = cur
local start = cur
local done = false
local skipped = 0
while not done do
  -- what is wanted; once expired entries were met at the front, more of
  -- them at a time (reading 100 to hand out 1 would cost every answer)
  local count = maxn - n
  if first == nil and skipped > 0 and count < 100 then count = 100 end
  local r = redis.call('XRANGE', KEYS[2], string.format('(0-%d', start), '+',
                       'COUNT', count)
  if #r == 0 then break end
  for i = 1, #r do
    local id = tonumber(string.sub(r[i][1], 3))
    local fl = r[i][2]
    local f, d, e = 0, '', 0
    for k = 1, #fl, 2 do
      local key = fl[k]
      if key == 'd' then d = fl[k + 1]
      elseif key == 'f' then f = tonumber(fl[k + 1]) or 0
      elseif key == 'e' then e = tonumber(fl[k + 1]) or 0 end
    end
    start = id
    if first == nil and e > 0 and e <= ms then
      -- expired, and nothing older is handed out: skipped (lost)
      skipped = skipped + 1
    else
      if n > 0 and (n >= maxn or bytes + #d > maxb) then
        done = true
        break
      end
      if first == nil then first = id end
      out[#out + 1] = id
      out[#out + 1] = f
      out[#out + 1] = d
      n = n + 1
      bytes = bytes + #d
      pos = id
    end
  end
  if n >= maxn then done = true end
end
local lost = 0
if first ~= nil then
  lost = first - cur - 1
elseif newest > cur then
  lost = newest - cur
  pos = newest
end
if KEYS[3] then
  local ct = tonumber(ARGV[8]) or 0
  if ct == 0 then
    redis.call('DEL', KEYS[3])
  elseif ct < 0 then
    redis.call('SET', KEYS[3], string.format('%d', pos))
  else
    redis.call('SET', KEYS[3], string.format('%d', pos), 'PX', ARGV[8])
  end
end
local res = {newest, epoch, lost, reset, pos}
for i = 1, #out do res[#res + 1] = out[i] end
return res
)LUA";

constexpr std::string_view range_lua = R"LUA(
local h = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local newest = tonumber(h[1]) or 0
local epoch = tonumber(h[2]) or 0
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local after = tonumber(ARGV[1]) or 0
local maxn = tonumber(ARGV[2]) or 1
if maxn < 1 then maxn = 1 end
local out = {}
local n, last = 0, after
local start = after
local done = false
while not done do
  local count = maxn - n
  if n == 0 and count < 100 then count = 100 end
  local r = redis.call('XRANGE', KEYS[2], string.format('(0-%d', start), '+',
                       'COUNT', count)
  if #r == 0 then break end
  for i = 1, #r do
    local id = tonumber(string.sub(r[i][1], 3))
    local fl = r[i][2]
    local f, d, t, e, b, y = 0, '', 0, 0, '', ''
    for k = 1, #fl, 2 do
      local key = fl[k]
      if key == 'd' then d = fl[k + 1]
      elseif key == 'f' then f = tonumber(fl[k + 1]) or 0
      elseif key == 't' then t = tonumber(fl[k + 1]) or 0
      elseif key == 'e' then e = tonumber(fl[k + 1]) or 0
      elseif key == 'b' then b = fl[k + 1]
      elseif key == 'y' then y = fl[k + 1] end
    end
    start = id
    if n == 0 and e > 0 and e <= ms then
      -- expired, nothing older returned: skipped (the reader's lost)
    else
      if n >= maxn then
        done = true
        break
      end
      out[#out + 1] = id
      out[#out + 1] = f
      out[#out + 1] = d
      out[#out + 1] = t
      out[#out + 1] = e
      out[#out + 1] = b
      out[#out + 1] = y
      n = n + 1
      last = id
    end
  end
  if n >= maxn then done = true end
end
local more = 0
if n >= maxn and last < newest then more = 1 end
local res = {newest, epoch, ms, more, after}
for i = 1, #out do res[#res + 1] = out[i] end
return res
)LUA";

} // namespace

std::string_view redis_script_text(unsigned i) noexcept
{
    switch (i) {
    case redis_script_publish:
        return publish_lua;
    case redis_script_take:
        return take_lua;
    case redis_script_range:
        return range_lua;
    default:
        return {};
    }
}

bool redis_script_sha(unsigned i, char out[40]) noexcept
{
    std::string_view t = redis_script_text(i);
    unsigned char d[20];
    if (t.empty() || !sha1(d, t.data(), t.size())) {
        return false;
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (int k = 0; k < 20; k++) {
        out[2 * k] = hex[d[k] >> 4];
        out[2 * k + 1] = hex[d[k] & 15];
    }
    return true;
}

} // namespace pushq
