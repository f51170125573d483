"""toot, the Mastodon CLI, unchanged, against authd: `toot login` registers
its app, prints the authorization URL and asks for the code on standard
input, as it does for a person; a person authorizes it through the login and
consent forms, and the code is typed in. toot then calls verify_credentials
itself; its library reads the app back with the token it saved."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from person import BASE, Person, code_of

config_home = tempfile.mkdtemp(prefix="toot-e2e-")
env = dict(os.environ, XDG_CONFIG_HOME=config_home, PYTHONUNBUFFERED="1", NO_COLOR="1")
toot = os.path.join(os.path.dirname(sys.executable), "toot")
login = subprocess.Popen(
    [toot, "login", "--instance", BASE],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    env=env,
)
seen = []
url = None
for line in login.stdout:
    seen.append(line)
    if line.startswith(BASE + "/oauth/authorize"):
        url = line.strip()
        break
assert url, "toot printed no login URL: " + "".join(seen) + login.stderr.read()
assert "urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob" in url, url

# "Open link in default browser?": no; the person opens it instead.
code = code_of(Person().authorize(url))
out, err = login.communicate("n\n" + code + "\n", timeout=120)
assert login.returncode == 0, (login.returncode, "".join(seen) + out, err)
assert "Successfully logged in" in out, out

# What toot saved, read back through toot's own code.
os.environ["XDG_CONFIG_HOME"] = config_home
from toot import config, http  # noqa: E402

user, app = config.get_active_user_app()
assert user.username == os.environ["AUTHD_USERNAME"], user
assert app.base_url == BASE, app
verified = http.get(app, user, "/api/v1/apps/verify_credentials").json()
assert verified["name"] == "toot - a Mastodon CLI client", verified
assert verified["website"] == "https://github.com/ihabunek/toot", verified
assert verified["scopes"] == ["read", "write", "follow"], verified
assert "client_secret" not in verified, verified
account = http.get(app, user, "/api/v1/accounts/verify_credentials").json()
assert account["username"] == user.username, account

shutil.rmtree(config_home, ignore_errors=True)
print(json.dumps({"client_id": app.client_id, "client_secret": app.client_secret, "access_token": user.access_token}))
