-- Shared helpers for the wrk scripts in this folder (loaded with dofile by
-- introspect.lua and client_credentials.lua; not a wrk script of its own).
--
-- wrk runs one Lua state per thread plus one for setup()/done(), so counters
-- live in each thread's globals and done() sums them via thread:get().

local M = {}

function M.getenv(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    io.stderr:write("wrk script: environment variable " .. name .. " is required\n")
    os.exit(2)
  end
  return v
end

-- Form-encode (application/x-www-form-urlencoded) one value.
function M.urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Configure the request and the per-thread callbacks. `ok_pattern` is a Lua
-- pattern that a successful response body must contain; `ok_status(status)`
-- decides whether the status is acceptable.
function M.install(body, ok_pattern, ok_status)
  wrk.method = "POST"
  wrk.path = M.getenv("WRK_PATH")
  wrk.body = body
  wrk.headers["Authorization"] = "Basic " .. M.getenv("WRK_BASIC")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
  M.callbacks(ok_pattern, ok_status)
end

-- GET WRK_PATH with the bearer token WRK_BEARER (if set): a request to a
-- backend behind authd's door (bench/door.sh).
function M.install_get(ok_pattern)
  wrk.method = "GET"
  wrk.path = M.getenv("WRK_PATH")
  local bearer = os.getenv("WRK_BEARER")
  if bearer ~= nil and bearer ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. bearer
  end
  M.callbacks(ok_pattern, function(status) return status == 200 end)
end

-- The per-thread counters and done()'s RESULT line.
function M.callbacks(ok_pattern, ok_status)
  local threads = {}

  function setup(thread)
    table.insert(threads, thread)
  end

  function init(args)
    bad_status = 0
    bad_body = 0
    responses = 0
  end

  function response(status, headers, body)
    responses = responses + 1
    if not ok_status(status) then
      bad_status = bad_status + 1
    elseif body == nil or not string.find(body, ok_pattern) then
      bad_body = bad_body + 1
    end
  end

  function done(summary, latency, requests)
    local bs, bb, n = 0, 0, 0
    for _, t in ipairs(threads) do
      bs = bs + (t:get("bad_status") or 0)
      bb = bb + (t:get("bad_body") or 0)
      n = n + (t:get("responses") or 0)
    end
    local e = summary.errors
    local sock = e.connect + e.read + e.write + e.timeout
    local secs = summary.duration / 1e6
    local rps = 0
    if secs > 0 then rps = summary.requests / secs end
    io.write(string.format(
      "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d"
        .. " requests=%d bad_status=%d bad_body=%d socket_errors=%d duration_s=%.2f\n",
      rps,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      bs + bb + sock, summary.requests, bs, bb, sock, secs))
    -- With WRK_HISTOGRAM set, the latency distribution too, in ms.
    local h = os.getenv("WRK_HISTOGRAM")
    if h ~= nil and h ~= "" then
      local parts = {}
      for _, p in ipairs({50, 75, 90, 95, 99, 99.5, 99.9, 99.99}) do
        table.insert(parts, string.format("p%s_ms=%.3f", tostring(p), latency:percentile(p) / 1000))
      end
      io.write(string.format("HISTOGRAM min_ms=%.3f %s max_ms=%.3f mean_ms=%.3f stdev_ms=%.3f\n",
        latency.min / 1000, table.concat(parts, " "), latency.max / 1000,
        latency.mean / 1000, latency.stdev / 1000))
    end
  end
end

return M
