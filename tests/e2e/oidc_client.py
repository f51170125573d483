"""authlib as an OpenID Connect relying party of authd, for each of RS256,
ES256 and EdDSA: discovery (/.well-known/openid-configuration), dynamic
registration at its registration_endpoint (RFC 7591) asking for that
id_token_signed_response_alg, the code flow with PKCE S256 and a nonce
through authd's login and consent pages (as a person posts them), the
id_token validated with authlib's JsonWebToken against the JWKS (signature,
iss, aud, exp, iat, nonce, azp, at_hash), userinfo with the access token,
and the refresh_token grant's new id_token. Prints a JSON report."""

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oidc.core import IDToken

from person import BASE, EMAIL, Person

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
REDIRECT_URI = "https://rp.example/callback"  # never contacted: the person stops at the redirect
USERNAME = __import__("os").environ["AUTHD_USERNAME"]

config = requests.get(BASE + "/.well-known/openid-configuration").json()
assert config["issuer"] == BASE, config
oauth_metadata = requests.get(BASE + "/.well-known/oauth-authorization-server").json()
for member, value in oauth_metadata.items():
    assert config.get(member) == value, ("the OpenID document differs from RFC 8414's", member)
assert "S256" in config["code_challenge_methods_supported"], config
for alg in ALGORITHMS:
    assert alg in config["id_token_signing_alg_values_supported"], (alg, config)
assert "registration_endpoint" in config, "no registration_endpoint in the discovery document"


def at_hash(access_token: str, alg: str) -> str:
    # Core 3.1.3.6: the left half of the hash the alg's hash function gives
    # (SHA-512 for EdDSA over Ed25519).
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def validate(id_token: str, alg: str, client_id: str, nonce) -> dict:
    """Core 3.1.3.7 with authlib: only the registered alg is accepted."""
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] == alg, ("signed with an alg the client did not register", header)
    jwks = JsonWebKey.import_key_set(requests.get(config["jwks_uri"]).json())
    options = {
        "iss": {"essential": True, "value": config["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    params = {"client_id": client_id}
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
        params["nonce"] = nonce
    claims = JsonWebToken([alg]).decode(
        id_token, jwks, claims_cls=IDToken, claims_options=options, claims_params=params
    )
    claims.validate(now=int(time.time()), leeway=5)
    if nonce is None:
        assert "nonce" not in claims, claims
    return dict(claims), header


report = {"algorithms": {}, "registration_endpoint": config["registration_endpoint"]}
for alg in ALGORITHMS:
    registered = requests.post(
        config["registration_endpoint"],
        json={
            "client_name": f"authlib RP ({alg})",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile email",
            "id_token_signed_response_alg": alg,
        },
    )
    assert registered.status_code == 201, (registered.status_code, registered.text)
    client = registered.json()
    assert client["id_token_signed_response_alg"] == alg, client

    session = OAuth2Session(
        client["client_id"],
        client["client_secret"],
        scope="openid profile email",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier, nonce, state = generate_token(48), generate_token(20), generate_token(16)
    url, state = session.create_authorization_url(
        config["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    person = Person()
    back = person.authorize(url)
    assert back.is_redirect, (back.status_code, back.text)
    callback = urljoin(back.url, back.headers["location"])
    assert callback.startswith(REDIRECT_URI), callback
    assert parse_qs(urlparse(callback).query)["state"] == [state], callback
    token = session.fetch_token(
        config["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    claims, header = validate(token["id_token"], alg, client["client_id"], nonce)
    assert claims["at_hash"] == at_hash(token["access_token"], alg), claims
    assert claims.get("azp", client["client_id"]) == client["client_id"], claims

    # A token for another nonce (a replay) fails the same validation.
    try:
        validate(token["id_token"], alg, client["client_id"], "another-nonce")
        replay_refused = False
    except Exception:
        replay_refused = True

    userinfo = session.get(config["userinfo_endpoint"]).json()
    assert userinfo["sub"] == claims["sub"], (userinfo, claims)

    refreshed = session.refresh_token(config["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"], refreshed
    refreshed_claims, _ = validate(refreshed["id_token"], alg, client["client_id"], None)
    assert refreshed_claims["sub"] == claims["sub"], refreshed_claims

    report["algorithms"][alg] = {
        "client_id": client["client_id"],
        "kid": header["kid"],
        "alg": header["alg"],
        "sub": claims["sub"],
        "nonce_matched": claims["nonce"] == nonce,
        "replay_refused": replay_refused,
        "at_hash_matched": True,
        "userinfo": {k: userinfo.get(k) for k in ["sub", "preferred_username", "email", "email_verified", "name"]},
        "refreshed_sub": refreshed_claims["sub"],
        "refreshed_has_nonce": "nonce" in refreshed_claims,
        "pages": person.shown,
    }
    assert userinfo["preferred_username"] == USERNAME and userinfo["email"] == EMAIL, userinfo

print(json.dumps(report))
