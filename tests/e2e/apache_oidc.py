"""Headless Chromium signs in to a page that Apache httpd protects with
mod_auth_openidc, through authd's login and consent pages, and reads the
claims mod_auth_openidc passed on to the page; then signs out through
mod_auth_openidc's logout URL, which goes to authd's end_session_endpoint
with the id_token_hint, and checks that the page asks authd's login again.
Prints what it saw as JSON; the Rust test asserts on it."""

import json
import os
from urllib.parse import quote

from playwright.sync_api import sync_playwright

from person import BASE, EMAIL, PASSWORD

APACHE = os.environ["APACHE_URL"].rstrip("/")
PROTECTED = APACHE + "/protected/"
# As browser.py: this machine's closed network refuses Chromium's own calls.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def claims_on(page) -> dict:
    return json.loads(page.inner_text("#claims", timeout=5_000))


def run(page, report):
    page.goto(PROTECTED)
    assert page.url.startswith(BASE + "/auth/sign_in"), page.url
    report["sent_to_login"] = True
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    assert "would like to perform actions on your behalf" in page.content(), page.content()
    report["consent_asked"] = True
    page.click("button[value=allow]")

    # mod_auth_openidc took the code at its redirect_uri, exchanged it,
    # validated the id_token and sent the browser back to the page.
    assert page.url.startswith(PROTECTED), page.url
    report["claims"] = claims_on(page)

    # Once signed in at Apache, the page is served without authd.
    page.goto(PROTECTED)
    assert page.url.startswith(PROTECTED), page.url
    report["claims_again"] = claims_on(page)

    # RP-initiated logout: mod_auth_openidc ends its session and sends the
    # browser to authd's end_session_endpoint with the id_token_hint and
    # the registered post_logout_redirect_uri, and authd sends it back.
    hops = []
    page.on("request", lambda request: hops.append(request.url) if request.is_navigation_request() else None)
    post_logout = os.environ["POST_LOGOUT_URL"]
    page.goto(APACHE + "/protected/redirect_uri?logout=" + quote(post_logout, safe=""))
    report["logout_hops"] = hops
    report["after_logout_url"] = page.url
    report["after_logout_text"] = page.inner_text("body")[:300]

    # Signed out at both: Apache sends the browser to authd, which asks
    # for the password again.
    page.goto(PROTECTED)
    report["login_again"] = page.url.startswith(BASE + "/auth/sign_in")
    report["login_again_url"] = page.url


report = {}
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=os.environ["AUTHD_CHROMIUM"], headless=True, args=CHROMIUM_FLAGS
    )
    page = browser.new_context(java_script_enabled=False).new_page()
    page.set_default_timeout(20_000)
    try:
        run(page, report)
    except Exception as failure:  # reported, so that the test prints Apache's log beside it
        report["error"] = repr(failure)
        report["error_url"] = page.url
        report["error_page"] = page.inner_text("body", timeout=2_000)[:2000]
    browser.close()

print(json.dumps(report))
