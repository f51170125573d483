// Reference OAuth 2.0 server for authd benchmarks: panva's oidc-provider with
// the client_credentials grant, token introspection and token revocation.
//
//   PORT=3000 NODE_ENV=production node server.js
//
// Loopback only (127.0.0.1). Default in-memory adapter, opaque access tokens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const PORT = Number.parseInt(process.env.PORT || '3000', 10);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;

const CLIENT_ID = 'bench';
const CLIENT_SECRET = 'bench-secret-bench-secret-bench-secret';

// Fresh signing key per run instead of the library's built-in development
// keys (which make it log a warning and are not production-like). Access
// tokens stay opaque, so the key only signs things the benchmark never asks for.
// RS256 matches the library's default client signing algorithms.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench-rs256' };

// Only the client that owns a token may introspect or revoke it.
const sameClient = async (ctx, client, token) => token.clientId === client.clientId;

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'read',
    },
  ],
  scopes: ['read'],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: sameClient },
    revocation: { enabled: true, allowedPolicy: sameClient },
  },
  // Keep the default opaque access token format; one hour lifetime.
  ttl: { ClientCredentials: 3600 },
  // Never render error pages with stack traces.
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(ISSUER, configuration);
// No per-request logging: oidc-provider and koa log nothing per request by
// default; only report unexpected server errors (not OAuth errors).
provider.on('server_error', (ctx, err) => { console.error('server_error', err); });

const server = provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider listening on ${ISSUER} (NODE_ENV=${process.env.NODE_ENV || ''})`);
});

const shutdown = () => { server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); };
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
