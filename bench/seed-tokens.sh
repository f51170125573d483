#!/usr/bin/env bash
# Stores N access tokens (and their grants) in the benchmark database, as
# if N client_credentials tokens had been issued, to measure authd with a
# large table. Run after bench/run-authd.sh has created authd_bench.
#   bench/seed-tokens.sh 1000000
set -euo pipefail
n=${1:?how many tokens}
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
psql "$BASE/authd_bench" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO apps (client_id, client_secret_digest, name, redirect_uris, scopes)
VALUES ('seed-' || md5(random()::text), sha256('seed'::bytea), 'seeded tokens',
        ARRAY['urn:ietf:wg:oauth:2.0:oob'], ARRAY['read'])
ON CONFLICT DO NOTHING;
WITH g AS (
    INSERT INTO grants (app_id, scopes, created_at)
    SELECT (SELECT max(id) FROM apps WHERE name = 'seeded tokens'), ARRAY['read'], now()
    FROM generate_series(1, $n)
    RETURNING id
)
-- Selectors as authd makes them: the millisecond, then random bytes.
INSERT INTO access_tokens (selector, digest, grant_id, format, scopes)
SELECT decode(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0'), 'hex')
           || substring(uuid_send(gen_random_uuid()) FROM 1 FOR 10),
       sha256(convert_to('seeded-token-' || g.id || '-' || random(), 'UTF8')), g.id, 'opaque', ARRAY['read']
FROM g;
SQL
# A table that has held a million tokens for a while has been vacuumed and
# checkpointed; without this, autovacuum and the checkpointer would still be
# busy with the bulk insert during the measurement, on the same two cores.
psql "$BASE/authd_bench" -v ON_ERROR_STOP=1 -q -c "VACUUM (ANALYZE) grants" \
    -c "VACUUM (ANALYZE) access_tokens" -c "CHECKPOINT"
psql "$BASE/authd_bench" -Atc "SELECT 'access tokens stored: ' || count(*) FROM access_tokens"
