// masto.js, unchanged, against authd: v1.apps.create registers (JSON), a
// person authorizes at the URL every Mastodon client builds (masto has no
// builder) through the login and consent forms (person.py), then
// oauth.token.create exchanges the code and oauth.revoke revokes it (both as
// multipart forms, masto's way); masto verifies the app and the account.
// ESM only: imported from the folder NODE_PATH names.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { createOAuthAPIClient, createRestAPIClient, MastoHttpError } = await import(
  pathToFileURL(path.join(process.env.NODE_PATH, "masto", "dist", "index.js")).href
);

const BASE = process.env.AUTHD_URL.replace(/\/$/, "");
const OOB = "urn:ietf:wg:oauth:2.0:oob";
const SCOPES = "read write:statuses";

const anonymous = createRestAPIClient({ url: BASE });
const app = await anonymous.v1.apps.create({
  clientName: "masto e2e",
  redirectUris: [OOB],
  scopes: SCOPES,
  website: "https://masto.example",
});
assert.deepEqual(app.redirectUris, [OOB]);
assert.deepEqual(app.scopes, SCOPES.split(" "));
assert.equal(app.clientSecretExpiresAt, 0);

const authorize = new URL(BASE + "/oauth/authorize");
authorize.search = new URLSearchParams({
  response_type: "code",
  client_id: app.clientId,
  redirect_uri: OOB,
  scope: SCOPES,
}).toString();
const person = execFileSync(process.env.PYTHON, [path.join(here, "person.py"), authorize.href], {
  cwd: here,
  encoding: "utf8",
});
const { code } = JSON.parse(person.trim().split("\n").pop());

const oauth = createOAuthAPIClient({ url: BASE });
const token = await oauth.token.create({
  grantType: "authorization_code",
  clientId: app.clientId,
  clientSecret: app.clientSecret,
  redirectUri: OOB,
  code,
});
assert.equal(token.tokenType, "Bearer");
assert.equal(token.scope, SCOPES);
assert.equal(typeof token.createdAt, "number");

const client = createRestAPIClient({ url: BASE, accessToken: token.accessToken });
const verified = await client.v1.apps.verifyCredentials();
assert.equal(verified.name, "masto e2e");
assert.equal(verified.website, "https://masto.example");
assert.equal(verified.clientSecret, undefined);
const account = await client.v1.accounts.verifyCredentials();
assert.equal(account.username, process.env.AUTHD_USERNAME);

await oauth.revoke({ clientId: app.clientId, clientSecret: app.clientSecret, token: token.accessToken });
await assert.rejects(client.v1.accounts.verifyCredentials(), (e) => {
  assert.ok(e instanceof MastoHttpError, String(e));
  assert.equal(e.statusCode, 401);
  return true;
});

console.log(
  JSON.stringify({ client_id: app.clientId, client_secret: app.clientSecret, access_token: token.accessToken }),
);
