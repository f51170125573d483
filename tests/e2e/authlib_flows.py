"""authlib, an OAuth 2.0 client library, against authd: authorization code
with PKCE to a loopback redirect_uri (on a port the app did not register,
as RFC 8252 allows), then client_credentials, refresh with rotation,
introspection (RFC 7662) and revocation (RFC 7009)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from person import BASE, Person

TOKEN_URL = BASE + "/oauth/token"
INTROSPECT_URL = BASE + "/oauth/introspect"
REVOKE_URL = BASE + "/oauth/revoke"

metadata = requests.get(BASE + "/.well-known/oauth-authorization-server").json()
assert "S256" in metadata["code_challenge_methods_supported"], metadata
assert metadata["token_endpoint"] == TOKEN_URL, metadata


class Callback(BaseHTTPRequestHandler):
    """The app's loopback redirect target: remembers what it was sent."""

    received = []

    def do_GET(self):
        Callback.received.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"You may close this window.")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Callback)
threading.Thread(target=server.serve_forever, daemon=True).start()
redirect_uri = f"http://127.0.0.1:{server.server_port}/callback"

registered = requests.post(
    BASE + "/api/v1/apps",
    json={"client_name": "authlib e2e", "redirect_uris": "http://127.0.0.1/callback", "scopes": "read write"},
).json()
client_id, client_secret = registered["client_id"], registered["client_secret"]

# --- authorization code with PKCE (S256), client_secret_basic ---
app = OAuth2Session(
    client_id,
    client_secret,
    scope="read write",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
verifier = generate_token(64)
authorization_url, state = app.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
assert "code_challenge=" in authorization_url

person = Person()
allowed = person.authorize(authorization_url)
assert allowed.status_code == 302, allowed.text
callback = allowed.headers["location"]
assert callback.startswith(redirect_uri + "?"), callback
assert person.http.get(callback).status_code == 200
assert Callback.received and Callback.received[0].startswith("/callback?code="), Callback.received
server.shutdown()

token = app.fetch_token(TOKEN_URL, authorization_response=callback, code_verifier=verifier)
assert token["token_type"] == "Bearer", token
assert token["scope"] == "read write", token
assert token["expires_in"] > 0 and token["refresh_token"], token

# The same code again is refused, and takes its tokens with it.
try:
    app.fetch_token(TOKEN_URL, authorization_response=callback, code_verifier=verifier)
    raise AssertionError("a used code was accepted twice")
except OAuthError as refused:
    assert refused.error == "invalid_grant", refused
reused = app.introspect_token(INTROSPECT_URL, token=token["access_token"]).json()
assert reused == {"active": False}, reused

# --- a fresh authorization, to go on with live tokens ---
verifier = generate_token(64)
authorization_url, state = app.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
# The reuse revoked the only token consent was given for, so the person is
# asked again (Doorkeeper's matching_token?), and allows.
person.shown.clear()
again = person.authorize(authorization_url)
assert again.status_code == 302, again.text
assert person.shown == ["consent"], person.shown
callback = again.headers["location"]
token = app.fetch_token(TOKEN_URL, authorization_response=callback, code_verifier=verifier)

facts = app.introspect_token(INTROSPECT_URL, token=token["access_token"]).json()
assert facts["active"] is True, facts
assert facts["client_id"] == client_id, facts
assert facts["scope"] == "read write", facts
assert facts["token_type"] == "Bearer", facts
assert facts["username"] == __import__("os").environ["AUTHD_USERNAME"], facts

# While that token lives, consent is remembered: a code at once, without a
# page; OpenID Connect's prompt=consent asks all the same.
person.shown.clear()
remembered_url, _ = app.create_authorization_url(metadata["authorization_endpoint"], code_verifier=generate_token(64))
assert person.authorize(remembered_url).status_code == 302
assert person.shown == [], person.shown
confirm_url, _ = app.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=generate_token(64), prompt="consent"
)
assert person.authorize(confirm_url).status_code == 302
assert person.shown == ["consent"], person.shown

# --- refresh, with rotation: the old refresh token is spent ---
old_refresh = token["refresh_token"]
refreshed = app.refresh_token(TOKEN_URL, refresh_token=old_refresh, scope="read")
assert refreshed["refresh_token"] != old_refresh, refreshed
assert refreshed["access_token"] != token["access_token"], refreshed
assert refreshed["scope"] == "read", refreshed
try:
    app.refresh_token(TOKEN_URL, refresh_token=old_refresh)
    raise AssertionError("a spent refresh token was accepted")
except OAuthError as refused:
    assert refused.error == "invalid_grant", refused
# Reuse of a spent refresh token revokes the whole family.
family = app.introspect_token(INTROSPECT_URL, token=refreshed["access_token"]).json()
assert family == {"active": False}, family

# --- client_credentials, client_secret_post ---
service = OAuth2Session(client_id, client_secret, scope="read", token_endpoint_auth_method="client_secret_post")
app_token = service.fetch_token(TOKEN_URL, grant_type="client_credentials")
assert app_token["scope"] == "read", app_token
facts = service.introspect_token(INTROSPECT_URL, token=app_token["access_token"]).json()
assert facts["active"] is True and "username" not in facts, facts

# --- revocation ---
revoked = service.revoke_token(REVOKE_URL, token=app_token["access_token"])
assert revoked.status_code == 200, revoked.text
facts = service.introspect_token(INTROSPECT_URL, token=app_token["access_token"]).json()
assert facts == {"active": False}, facts

print(json.dumps({"client_id": client_id, "client_secret": client_secret, "revoked": app_token["access_token"]}))
