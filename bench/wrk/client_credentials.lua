-- wrk script: OAuth 2.0 client_credentials grant at the token endpoint.
--
--   WRK_PATH=/oauth/token \
--   WRK_BASIC=$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0) \
--   wrk -t2 -c32 -d10s -s bench/wrk/client_credentials.lua http://127.0.0.1:8080
--
-- POSTs grant_type=client_credentials&scope=read with HTTP Basic client
-- authentication. A response is an error unless it is 200 and its body
-- contains "access_token". done() prints one line:
--   RESULT rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=... errors=... (+ details)
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

common.install(
  "grant_type=client_credentials&scope=read",
  '"access_token"',
  function(status) return status == 200 end)
