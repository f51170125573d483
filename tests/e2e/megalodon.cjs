// megalodon, the Node.js fediverse client, unchanged, against authd:
// registerApp registers and builds the authorization URL, a person
// authorizes it through the login and consent forms (person.py), then
// fetchAccessToken exchanges the code; megalodon verifies the app and the
// account, and revokes its token.
"use strict";
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const path = require("node:path");
const generator = require("megalodon").default;

const BASE = process.env.AUTHD_URL.replace(/\/$/, "");
const SCOPES = ["read", "write:statuses"];

async function main() {
  const anonymous = generator("mastodon", BASE);
  const app = await anonymous.registerApp("megalodon e2e", {
    scopes: SCOPES,
    website: "https://megalodon.example",
  });
  assert.equal(app.redirect_uri, "urn:ietf:wg:oauth:2.0:oob");
  assert.ok(app.url.startsWith(BASE + "/oauth/authorize?"), app.url);

  const person = execFileSync(process.env.PYTHON, [path.join(__dirname, "person.py"), app.url], {
    cwd: __dirname,
    encoding: "utf8",
  });
  const { code } = JSON.parse(person.trim().split("\n").pop());

  const token = await anonymous.fetchAccessToken(app.client_id, app.client_secret, code, app.redirect_uri);
  assert.equal(token.token_type, "Bearer");
  assert.equal(token.scope, SCOPES.join(" "));
  assert.equal(typeof token.created_at, "number");
  assert.equal(token.refresh_token, null, "Mastodon issues no refresh token");

  const client = generator("mastodon", BASE, token.access_token);
  const verified = (await client.verifyAppCredentials()).data;
  assert.equal(verified.name, "megalodon e2e");
  assert.equal(verified.website, "https://megalodon.example");
  assert.deepEqual(verified.scopes, SCOPES);
  assert.equal(verified.client_secret, undefined);
  const account = (await client.verifyAccountCredentials()).data;
  assert.equal(account.username, process.env.AUTHD_USERNAME);

  await client.revokeToken(app.client_id, app.client_secret, token.access_token);
  await assert.rejects(client.verifyAccountCredentials(), (e) => {
    assert.equal(e.response?.status, 401, String(e));
    return true;
  });

  console.log(
    JSON.stringify({
      client_id: app.client_id,
      client_secret: app.client_secret,
      access_token: token.access_token,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
