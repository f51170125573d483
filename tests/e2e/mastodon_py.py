"""Mastodon.py, unchanged, against authd: register an app, a person
authorizes it through the login and consent forms, then Mastodon.py logs in
with the code; consent is remembered, and asked again with force_login;
Mastodon.py verifies the app and the account, and revokes its token."""

import json
import os

from mastodon import Mastodon, MastodonAPIError, MastodonUnauthorizedError

from person import BASE, Person, code_of

SCOPES = ["read", "write:statuses"]

client_id, client_secret = Mastodon.create_app(
    "Mastodon.py e2e",
    scopes=SCOPES,
    redirect_uris="urn:ietf:wg:oauth:2.0:oob",
    website="https://mastodonpy.example",
    api_base_url=BASE,
)
api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=BASE)

# Mastodon.py reads our RFC 8414 document to find the endpoints.
server_info = api.oauth_authorization_server_info()
assert server_info["authorization_endpoint"] == BASE + "/oauth/authorize", server_info

url = api.auth_request_url(scopes=SCOPES, state="mastodon-py-state", allow_http=True)
person = Person()
code = code_of(person.authorize(url))
assert person.shown == ["sign_in", "consent"], person.shown

access_token = api.log_in(code=code, scopes=SCOPES, allow_http=True)
assert len(access_token) == 43, access_token

# While the token lives, the same request is answered at once, out of band
# on Doorkeeper's /oauth/authorize/native page; with Mastodon.py's
# force_login (multi-account clients), the person signs in again and is
# asked again.
person.shown.clear()
again = person.authorize(url)
assert person.shown == [], person.shown
assert "/oauth/authorize/native?code=" in again.url, again.url
assert len(code_of(again)) == 43
forced = api.auth_request_url(scopes=SCOPES, force_login=True, allow_http=True)
code_of(person.authorize(forced))
assert person.shown == ["sign_in", "consent"], person.shown

app = api.app_verify_credentials()
assert app["name"] == "Mastodon.py e2e", app
assert app["website"] == "https://mastodonpy.example", app
assert set(app["scopes"]) == set(SCOPES), app
assert "client_secret" not in app, app

account = api.account_verify_credentials()
assert account["username"] == os.environ["AUTHD_USERNAME"], account
assert account["acct"] == account["username"], account
assert "source" in account, account

api.revoke_access_token(allow_http=True)

# The revoked token is refused from now on.
after = Mastodon(access_token=access_token, api_base_url=BASE)
try:
    after.account_verify_credentials()
    raise AssertionError("a revoked token still verifies")
except (MastodonUnauthorizedError, MastodonAPIError) as refused:
    assert "401" in str(refused) or "invalid" in str(refused).lower(), refused

print(json.dumps({"client_id": client_id, "client_secret": client_secret, "access_token": access_token}))
