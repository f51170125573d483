"""A person at a browser without JavaScript: posts the login and consent
forms exactly as a browser submits them (cookies, hidden fields, CSRF
token), so that the clients under test see a real authorization."""

import html
import json
import os
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import requests

BASE = os.environ["AUTHD_URL"].rstrip("/")
EMAIL = os.environ["AUTHD_EMAIL"]
PASSWORD = os.environ["AUTHD_PASSWORD"]

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(page: str) -> dict:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def first_form(page: str) -> str:
    start = page.index("<form")
    return page[start : page.index("</form>", start)]


class Person:
    def __init__(self):
        self.http = requests.Session()
        # The pages the person was shown, in order: "sign_in", "consent".
        self.shown = []

    def _follow(self, response: requests.Response) -> requests.Response:
        """Follows redirects within authd, as a browser would; a redirect
        out of authd (to the app) is returned, not followed."""
        while response.is_redirect:
            target = urljoin(response.url, response.headers["location"])
            if not target.startswith(BASE + "/"):
                return response
            response = self.http.get(target, allow_redirects=False)
        return response

    def authorize(self, authorize_url: str) -> requests.Response:
        """Opens the authorization URL, signs in if asked to, clicks Allow
        if asked to; returns the last response: the redirect to the app, or
        the out-of-band page."""
        page = self._follow(self.http.get(authorize_url, allow_redirects=False))
        if page.is_redirect:
            return page  # consent was remembered
        assert page.status_code == 200, (page.status_code, page.text)
        if 'action="/auth/sign_in"' in page.text:
            self.shown.append("sign_in")
            form = hidden_fields(first_form(page.text))
            form.update(email=EMAIL, password=PASSWORD)
            page = self._follow(self.http.post(BASE + "/auth/sign_in", data=form, allow_redirects=False))
            if page.is_redirect:
                return page
            assert page.status_code == 200, (page.status_code, page.text)
        if "would like to perform actions on your behalf" not in page.text:
            return page  # an out-of-band code, shown without asking again
        self.shown.append("consent")
        form = hidden_fields(first_form(page.text))
        form["decision"] = "allow"
        return self._follow(self.http.post(BASE + "/oauth/authorize", data=form, allow_redirects=False))


def oob_code(page: str) -> str:
    match = re.search(r'id="code">([^<]+)<', page)
    assert match, page
    return match.group(1)


def code_of(response: requests.Response) -> str:
    """The authorization code at the end of the flow, wherever it is: the
    `code` parameter of a redirect to the app, or of the final URL (as
    Doorkeeper's GET /oauth/authorize/native?code=... for out-of-band
    apps), or else the element that shows it on the page."""
    if response.is_redirect:
        location = urljoin(response.url, response.headers["location"])
        codes = parse_qs(urlparse(location).query).get("code")
        assert codes, location
        return codes[0]
    codes = parse_qs(urlparse(response.url).query).get("code")
    if codes:
        return codes[0]
    assert response.status_code == 200, (response.status_code, response.text)
    return oob_code(response.text)


if __name__ == "__main__":
    # For clients in other languages: `python person.py AUTHORIZE_URL`
    # authorizes as the person and prints {"code": ...}.
    print(json.dumps({"code": code_of(Person().authorize(sys.argv[1]))}))
