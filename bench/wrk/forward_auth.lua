-- wrk script: forward auth, as a gateway asks it (nginx's auth_request).
--
--   WRK_BEARER=<access token> \
--   wrk -t2 -c32 -d10s -s bench/wrk/forward_auth.lua http://127.0.0.1:8081
--
-- GETs /authd/check for GET /api/v1/timelines/home with the token. A
-- response is an error unless it is 200. done() prints one RESULT line.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

wrk.method = "GET"
wrk.path = "/authd/check"
wrk.headers["Authorization"] = "Bearer " .. common.getenv("WRK_BEARER")
wrk.headers["X-Original-Method"] = "GET"
wrk.headers["X-Original-URI"] = "/api/v1/timelines/home"
common.callbacks("", function(status) return status == 200 end)
