#!/usr/bin/env bash
# The curl commands of the seed documents (../shared/reference/seeds/), as
# written, against authd. Each command below is the seed's text verbatim;
# at run time only the host is changed, and the placeholders are filled in
# as the documents tell the reader to (YOUR_CLIENT_ID and the like). The
# browser step ("paste the URL into your browser") is done with curl and a
# cookie jar, the forms posted as a browser posts them.
#
# Not run: the seeds' /api/v1/notifications call, which is Mastodon's API
# rather than authd's. The older copies of the GoToSocial page (seeds 000
# and 002) lost line continuations when converted to text; their commands
# are the same as seed 001's, which is run.
set -euo pipefail
: "${AUTHD_URL:?}" "${AUTHD_EMAIL:?}" "${AUTHD_PASSWORD:?}" "${AUTHD_USERNAME:?}"
PYTHON=${PYTHON:-python3}
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

# run SEED_TEXT [PLACEHOLDER VALUE]...: the seed's command with the host
# changed and the placeholders filled in; prints the response body.
run() {
    local cmd=$1
    shift
    cmd=${cmd//https:\/\/example.org/$AUTHD_URL}
    cmd=${cmd//https:\/\/mastodon.example/$AUTHD_URL}
    cmd=${cmd//https:\/\/your.instance.url/$AUTHD_URL}
    while [ $# -gt 0 ]; do
        cmd=${cmd//$1/$2}
        shift 2
    done
    echo "+ $cmd" >&2
    eval "$cmd --silent --show-error"
}

field() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
expect() { # expect JSON FIELD VALUE
    local got
    got=$(printf '%s' "$1" | field "$2")
    [ "$got" = "$3" ] || { echo "FAIL: $2 is '$got', expected '$3' in $1" >&2; exit 1; }
}
hidden() { # hidden NAME < page: the value of a hidden form field
    sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n1 | sed 's/&amp;/\&/g; s/&quot;/"/g'
}

### Seed 001 (GoToSocial, "Authentication with the API") #################

registered=$(run "curl \
  -H 'Content-Type:application/json' \
  -d '{
        \"client_name\": \"your_app_name\",
        \"redirect_uris\": \"urn:ietf:wg:oauth:2.0:oob\",
        \"scopes\": \"read\"
      }' \
  'https://example.org/api/v1/apps'")
expect "$registered" name your_app_name
expect "$registered" redirect_uri urn:ietf:wg:oauth:2.0:oob
client_id=$(printf '%s' "$registered" | field client_id)
client_secret=$(printf '%s' "$registered" | field client_secret)

# "paste the URL into your browser": the seed's URL, the login form, Allow.
authorize_url="https://example.org/oauth/authorize?client_id=YOUR_CLIENT_ID&redirect_uri=urn:ietf:wg:oauth:2.0:oob&response_type=code&scope=read"
authorize_url=${authorize_url//https:\/\/example.org/$AUTHD_URL}
authorize_url=${authorize_url//YOUR_CLIENT_ID/$client_id}
login_form=$(curl -sS -L -c "$jar" -b "$jar" "$authorize_url")
consent=$(curl -sS -L -c "$jar" -b "$jar" \
    --data-urlencode "csrf_token=$(printf '%s' "$login_form" | hidden csrf_token)" \
    --data-urlencode "next=$(printf '%s' "$login_form" | hidden next)" \
    --data-urlencode "email=$AUTHD_EMAIL" --data-urlencode "password=$AUTHD_PASSWORD" \
    "$AUTHD_URL/auth/sign_in")
grep -q "Hi $AUTHD_USERNAME!" <<<"$consent" || { echo "FAIL: no consent page: $consent" >&2; exit 1; }
grep -q "Application <strong>your_app_name</strong> would like to perform actions on your behalf, with scope <em>read</em>" <<<"$consent"
grep -q "The application will redirect to urn:ietf:wg:oauth:2.0:oob to continue." <<<"$consent"
form=()
for name in csrf_token response_type client_id redirect_uri scope state; do
    form+=(--data-urlencode "$name=$(printf '%s' "$consent" | hidden "$name")")
done
# Allow redirects, as Doorkeeper does, to /oauth/authorize/native?code=...
oob_page=$(curl -sS -L -c "$jar" -b "$jar" "${form[@]}" --data-urlencode decision=allow "$AUTHD_URL/oauth/authorize")
grep -q "Copy this authorization code and paste it to the application." <<<"$oob_page"
code=$(sed -n 's/.*id="code">\([^<]*\)<.*/\1/p' <<<"$oob_page")
[ -n "$code" ] || { echo "FAIL: no code on $oob_page" >&2; exit 1; }

token=$(run "curl \
  -H 'Content-Type: application/json' \
  -d '{
        \"redirect_uri\": \"urn:ietf:wg:oauth:2.0:oob\",
        \"client_id\": \"YOUR_CLIENT_ID\",
        \"client_secret\": \"YOUR_CLIENT_SECRET\",
        \"grant_type\": \"authorization_code\",
        \"code\": \"YOUR_AUTHORIZATION_TOKEN\"
      }' \
  'https://example.org/oauth/token'" \
    YOUR_CLIENT_ID "$client_id" YOUR_CLIENT_SECRET "$client_secret" YOUR_AUTHORIZATION_TOKEN "$code")
expect "$token" scope read
expect "$token" token_type Bearer
access_token=$(printf '%s' "$token" | field access_token)

account=$(run "curl \
  -H 'Authorization: Bearer YOUR_ACCESS_TOKEN' \
  'https://example.org/api/v1/accounts/verify_credentials'" YOUR_ACCESS_TOKEN "$access_token")
expect "$account" username "$AUTHD_USERNAME"

### Seed 003 (Mastodon, "Getting started with the API") ###################

registered=$(run "curl -X POST \
-F 'client_name=Test Application' \
-F 'redirect_uris=urn:ietf:wg:oauth:2.0:oob' \
-F 'scopes=read write push' \
-F 'website=https://myapp.example' \
https://mastodon.example/api/v1/apps")
expect "$registered" name "Test Application"
expect "$registered" website https://myapp.example
client_id=$(printf '%s' "$registered" | field client_id)
client_secret=$(printf '%s' "$registered" | field client_secret)

token=$(run "curl -X POST \
-F 'client_id=your_client_id_here' \
-F 'client_secret=your_client_secret_here' \
-F 'redirect_uri=urn:ietf:wg:oauth:2.0:oob' \
-F 'grant_type=client_credentials' \
https://mastodon.example/oauth/token" your_client_id_here "$client_id" your_client_secret_here "$client_secret")
expect "$token" scope read
app_token=$(printf '%s' "$token" | field access_token)

app=$(run "curl \
-H 'Authorization: Bearer our_access_token_here' \
https://mastodon.example/api/v1/apps/verify_credentials" our_access_token_here "$app_token")
expect "$app" name "Test Application"

echo "{\"seed_001_access_token\": \"$access_token\", \"seed_003_app_token\": \"$app_token\"}"
