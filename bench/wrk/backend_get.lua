-- wrk script: GET a backend's endpoint, through authd's door or directly.
--
--   WRK_PATH=/api/v1/timelines/home WRK_BEARER=<access token> \
--   wrk -t2 -c32 -d10s -s bench/wrk/backend_get.lua http://127.0.0.1:8081
--
-- A response is an error unless it is 200 with the backend's fixed body
-- ({"backend":true}). done() prints one RESULT line, as introspect.lua's.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

common.install_get('"backend"%s*:%s*true')
