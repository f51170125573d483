"""Headless Chromium, driven by Playwright, goes through authd's pages as a
person does: the login form, the consent page, Allow, the out-of-band code.
It then asks again and checks that consent is not asked twice, and visits a
bad authorization request to see the error page. Each page is kept as a
screenshot in AUTHD_SCREENSHOTS (the README shows docs/*.png)."""

import json
import os
import pathlib

import requests
from playwright.sync_api import sync_playwright

from person import BASE, EMAIL, PASSWORD

SHOTS = pathlib.Path(os.environ["AUTHD_SCREENSHOTS"])
SHOTS.mkdir(parents=True, exist_ok=True)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

registered = requests.post(
    BASE + "/api/v1/apps",
    json={
        "client_name": "Elephant Reader",
        "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
        "scopes": "read write:statuses",
        "website": "https://elephant.example",
    },
).json()
authorize_url = (
    f"{BASE}/oauth/authorize?response_type=code&client_id={registered['client_id']}"
    "&redirect_uri=urn:ietf:wg:oauth:2.0:oob&scope=read+write:statuses"
)

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=os.environ["AUTHD_CHROMIUM"], headless=True, args=CHROMIUM_FLAGS
    )
    page = browser.new_context(viewport={"width": 720, "height": 640}, java_script_enabled=False).new_page()

    page.goto(authorize_url)
    assert page.url.startswith(BASE + "/auth/sign_in"), page.url
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.screenshot(path=SHOTS / "login.png")
    page.click("button[type=submit]")

    assert "would like to perform actions on your behalf" in page.content(), page.content()
    assert page.inner_text("h1") == f"Hi {os.environ['AUTHD_USERNAME']}!"
    page.screenshot(path=SHOTS / "consent.png")
    page.click("button[value=allow]")

    # Doorkeeper's out-of-band page, the URL embedded web views watch for.
    assert "/oauth/authorize/native?code=" in page.url, page.url
    code = page.inner_text("#code")
    assert page.url.endswith("code=" + code), (page.url, code)
    assert len(code) == 43, code
    page.screenshot(path=SHOTS / "code.png")

    # No token has been issued for the app yet, so consent is asked again
    # (Doorkeeper's matching_token?: a code alone remembers nothing).
    page.goto(authorize_url)
    assert "would like to perform actions on your behalf" in page.content(), page.content()
    page.click("button[value=allow]")
    second_code = page.inner_text("#code")
    assert second_code != code, "each authorization gets its own code"

    # An unregistered redirect_uri: an error page, never a redirect.
    page.goto(authorize_url.replace("urn:ietf:wg:oauth:2.0:oob", "https://evil.example/steal"))
    assert page.url.startswith(BASE), page.url
    assert "invalid_redirect_uri" in page.content() or "redirect" in page.inner_text("body").lower()
    page.screenshot(path=SHOTS / "error.png")
    browser.close()

print(json.dumps({"client_id": registered["client_id"], "client_secret": registered["client_secret"], "code": code}))
