-- wrk script: RFC 7662 token introspection.
--
--   WRK_PATH=/oauth/introspect WRK_TOKEN=<access token> \
--   WRK_BASIC=$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0) \
--   wrk -t2 -c32 -d10s -s bench/wrk/introspect.lua http://127.0.0.1:8080
--
-- POSTs token=<WRK_TOKEN> with HTTP Basic client authentication. A response
-- is an error unless it is 2xx and its body contains "active":true.
-- done() prints one line:
--   RESULT rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=... errors=... (+ details)
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

common.install(
  "token=" .. common.urlencode(common.getenv("WRK_TOKEN")),
  '"active"%s*:%s*true',
  function(status) return status >= 200 and status < 300 end)
