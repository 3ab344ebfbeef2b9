#!/usr/bin/env node
// Test-only OpenID provider for the resortd API tests: npm `oidc-provider` (a certified OP) on
// 127.0.0.1 over HTTPS. Never run this anywhere but a test machine: any password is accepted.
//
// Usage:
//   node provider.mjs --dir DIR [--port N] [--redirect-uri URI ...] [--client-id ID]
//                     [--client-secret S] [--id-token-ttl SECONDS] [--init-jwks]
//                     [--exit-on-stdin-eof]
//   node provider.mjs --gen-jwks            prints a fresh private JWKS (one RSA 2048 key) and exits
// --init-jwks writes DIR/jwks.json with one new key when it does not exist yet.
// --exit-on-stdin-eof exits when stdin closes (the harness keeps it open while it lives).
// Each option may also come from the environment: OIDC_DIR, OIDC_PORT, OIDC_REDIRECT_URIS
// (space-separated), OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_ID_TOKEN_TTL.
// DIR holds cert.pem + key.pem (server certificate for 127.0.0.1, IP SAN) and jwks.json (the
// private signing JWKS; the first key signs). Port 0 picks a free port. When ready, one line is
// printed on stdout:  oidc-provider listening on https://127.0.0.1:PORT   (= the issuer)
//
// Accounts: guest1, guest2, staff1, manager1, admin1 (ACCOUNTS below); any password. Unknown
// login names have no account: the authorization then ends on the provider's own server_error
// page (HTTP 500), not at the redirect_uri.
// Scopes: openid, profile (name), email (email, email_verified), groups (groups, resort).
// conformIdTokenClaims is off, so the id_token itself carries every claim its scopes grant.
//
// Refresh tokens: every code exchange whose scope has openid also returns a refresh_token (no
// offline_access or consent needed), valid 14 days, bound to the provider's login session (it
// dies with it, e.g. at end_session). The refresh_token grant answers with a new refresh token
// (rotation: the old one is spent; presenting a spent one again revokes the whole grant, as
// reuse detection), a new access token and a NEW id_token signed like the first (current key),
// with the account's claims as they are NOW, the same sub, and the nonce of the first login.
// A revoked or unknown refresh token: 400 {"error": "invalid_grant", ...}. Test routes:
//   POST /__test/account  body {"account": ID, "groups": [...], "resort": S|null, "name": S}
//                         (any subset) changes that account's claims from now on (null drops
//                         resort) -> 200 {"sub": ID, ...its claims}; unknown account -> 404
//   POST /__test/revoke   body {"account": ID} drops every grant, refresh token, access token
//                         and authorization code of ID from the store (as an IdP admin's
//                         "sign out everywhere") -> 200 {"revoked": N entries}; unknown -> 404
//
// Signing key rotation -- the choice: oidc-provider builds its keystore once, in the Provider
// constructor, and has no public API to change keys later. So a rotation generates a new RSA
// key, puts it FIRST in the JWKS (oidc-provider signs with the first matching key), keeps the
// old keys after it (both kids are published at /jwks), writes the JWKS back to DIR/jwks.json
// (so a restart keeps the rotated keys), builds a NEW Provider instance with the same
// configuration and swaps it in as the HTTPS server's handler: same port, same issuer, no
// downtime. Sessions, interactions, codes and grants survive the swap, because all instances
// use one in-memory adapter (SharedMemoryAdapter below) and the same cookie signing keys.
// A code issued before a rotation can be redeemed after it; its id_token then carries the new
// kid, which the relying party has not seen and must refetch the JWKS for. Triggers:
//   POST /__test/rotate          -> 200 {"kid": NEW_KID, "kids": [ALL KIDS, newest first]}
//   SIGHUP                       -> same, logged on stderr as "rotated signing key: kid=..."
// The same swap changes the client's redirect_uris at runtime (the RP's port is often only known
// after the provider runs):
//   POST /__test/redirect_uris   body {"redirect_uris": [...]} -> 200 {"redirect_uris": [...]}
// and the client's authentication at the token endpoint (client_secret_basic by default):
//   POST /__test/client_auth     body {"method": "private_key_jwt", "jwks_uri": URL} or
//                                {"method": "client_secret_basic"} -> 200 (the same)
// A stop/start (SIGTERM, then run again with the same DIR and --port) simulates an IdP outage:
// keys, issuer and port stay; in-memory sessions and codes are lost, as on a real restart.
//
// Runs on Node.js 18.19+ (Debian 12's nodejs is 18.20) too, with the shims below; oidc-provider 9
// prints "Unsupported runtime" on stderr (on Node 20 as well: it wants Node 22 LTS or later).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as nodeModule from 'node:module';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

// Node 18 lacks the globals crypto and CryptoKey (Web Crypto; Node 19), URL.parse (Node 22.1 /
// 20.18) and crypto.hash (Node 21.7 / 20.12), which oidc-provider 9 and jose 6 use. Globals are
// patched. crypto.hash cannot be: a builtin's ESM namespace cannot gain names, so a module
// resolve hook hands every other module that imports node:crypto a module that re-exports it
// plus `hash` (module.register: Node 18.19+).
globalThis.crypto ??= crypto.webcrypto;
globalThis.CryptoKey ??= crypto.webcrypto.CryptoKey;
if (typeof URL.parse !== 'function') {
  URL.parse = (input, base) => {
    try {
      return new URL(input, base);
    } catch {
      return null;
    }
  };
}
if (typeof crypto.hash !== 'function') {
  const shim = `data:text/javascript,${encodeURIComponent(`
    import * as c from 'node:crypto';
    export * from 'node:crypto';
    export function hash(algorithm, data, outputEncoding = 'hex') {
      const digest = c.createHash(algorithm).update(data);
      return outputEncoding === 'buffer' ? digest.digest() : digest.digest(outputEncoding);
    }
    export default { ...c.default, hash };`)}`;
  nodeModule.register(`data:text/javascript,${encodeURIComponent(`
    export async function resolve(specifier, context, next) {
      if ((specifier === 'node:crypto' || specifier === 'crypto')
          && !context.parentURL?.startsWith('data:')) {
        return { url: ${JSON.stringify(shim)}, shortCircuit: true };
      }
      return next(specifier, context);
    }`)}`);
}

const ACCOUNTS = {
  guest1: { email: 'guest1@example.test', email_verified: true, name: 'Guest One', groups: [] },
  guest2: { email: 'guest2@example.test', email_verified: true, name: 'Guest Two', groups: [] },
  staff1: {
    email: 'staff1@example.test', email_verified: true, name: 'Staff One',
    groups: ['resort-staff'], resort: 'rs_demo',
  },
  manager1: {
    email: 'manager1@example.test', email_verified: true, name: 'Manager One',
    groups: ['resort-managers'], resort: 'rs_demo',
  },
  admin1: { email: 'admin1@example.test', email_verified: true, name: 'Admin One', groups: ['group-admins'] },
};

function newSigningKey() {
  // The key comes out as PEM and is exported from a new KeyObject: Debian 12's Node 18 deadlocks
  // now and then (1 start in ~40) when the garbage collector frees the key generation job while
  // its own KeyObject is being exported to a JWK (both take the same mutex).
  const { privateKey: pem } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const jwk = crypto.createPrivateKey(pem).export({ format: 'jwk' });
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  const kid = `rs256-${stamp}-${crypto.randomBytes(4).toString('hex')}`;
  return { kid, use: 'sig', alg: 'RS256', ...jwk };
}

const { values: opts } = parseArgs({
  options: {
    'gen-jwks': { type: 'boolean', default: false },
    'init-jwks': { type: 'boolean', default: false },
    'exit-on-stdin-eof': { type: 'boolean', default: false },
    dir: { type: 'string', default: process.env.OIDC_DIR },
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    'redirect-uri': {
      type: 'string',
      multiple: true,
      default: (process.env.OIDC_REDIRECT_URIS ?? 'http://127.0.0.1:9/cb').split(/\s+/).filter(Boolean),
    },
    'client-id': { type: 'string', default: process.env.OIDC_CLIENT_ID ?? 'resortd-test' },
    'client-secret': { type: 'string', default: process.env.OIDC_CLIENT_SECRET ?? 'resortd-test-secret' },
    'id-token-ttl': { type: 'string', default: process.env.OIDC_ID_TOKEN_TTL ?? '3600' },
  },
});

if (opts['gen-jwks']) {
  process.stdout.write(`${JSON.stringify({ keys: [newSigningKey()] }, null, 2)}\n`);
  process.exit(0);
}
if (!opts.dir) {
  process.stderr.write('provider.mjs: --dir (or OIDC_DIR) is required\n');
  process.exit(2);
}

// Imported only now, after the shims above (and --gen-jwks needs no provider).
const { default: Provider } = await import('oidc-provider');

const dir = path.resolve(opts.dir);
const jwksFile = path.join(dir, 'jwks.json');
if (opts['init-jwks'] && !fs.existsSync(jwksFile)) {
  fs.writeFileSync(jwksFile, `${JSON.stringify({ keys: [newSigningKey()] }, null, 2)}\n`, { mode: 0o600 });
}
let jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8'));
let redirectUris = opts['redirect-uri'];
// How the client proves itself at the token endpoint: client_secret_basic, or private_key_jwt
// with its keys at jwksUri (POST /__test/client_auth changes it, as redirect_uris).
let clientAuth = { method: 'client_secret_basic', jwksUri: undefined };
const idTokenTtl = Number(opts['id-token-ttl']);
// Fixed cookie signing keys: a swapped-in Provider must accept the cookies of the previous one.
const cookieKeys = [crypto.createHash('sha256').update(`resortd-test-cookies:${dir}`).digest('hex')];

function log(line) {
  process.stderr.write(`oidc-provider: ${line}\n`);
}

function configuration() {
  return {
    adapter: SharedMemoryAdapter,
    // The relying party (resortd) runs on 127.0.0.1 too, and oidc-provider's SSRF guard
    // refuses to fetch from loopback (a client's jwks_uri, for private_key_jwt): test only.
    fetch(url, options) {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    clients: [{
      client_id: opts['client-id'],
      ...(clientAuth.method === 'private_key_jwt'
        ? { jwks_uri: clientAuth.jwksUri, token_endpoint_auth_signing_alg: 'ES256' }
        : { client_secret: opts['client-secret'] }),
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: clientAuth.method,
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: structuredClone(jwks),
    cookies: { keys: cookieKeys },
    features: {
      devInteractions: { enabled: true },
    },
    pkce: { required: () => true }, // oidc-provider 9 supports only S256
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      groups: ['groups', 'resort'],
    },
    conformIdTokenClaims: false,
    // A refresh token at every code exchange whose scope has openid (oidc-provider's default
    // wants offline_access, and a consent to it); a new one at every refresh (rotation).
    async issueRefreshToken(ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('openid');
    },
    rotateRefreshToken(ctx) {
      return true;
    },
    // oidc-provider's defaults (IdToken: unless --id-token-ttl), spelled out only to silence its
    // "you SHOULD change it" notices.
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    async findAccount(ctx, id) {
      const account = Object.hasOwn(ACCOUNTS, id) ? ACCOUNTS[id] : undefined;
      if (!account) {
        return undefined;
      }
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...structuredClone(account) };
        },
      };
    },
  };
}

// Storage shared by every Provider instance of this process (oidc-provider 9's own in-memory
// adapter gives each instance a store of its own, which a swap would lose). Entries expire
// when read after their expiresIn; a test process is short-lived, so nothing sweeps them.
const store = new Map();
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

function storeGet(key) {
  const entry = store.get(key);
  if (entry && entry.expiresAt && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry?.value;
}

function storeSet(key, value, expiresIn) {
  store.set(key, { value, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : 0 });
}

class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') {
      storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    }
    if (payload.userCode) {
      storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    }
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      storeSet(grantKey, [...(storeGet(grantKey) ?? []), key]);
    }
    storeSet(key, payload, expiresIn);
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) {
      payload.consumed = Math.floor(Date.now() / 1000);
    }
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of storeGet(grantKey) ?? []) {
      store.delete(key);
    }
    store.delete(grantKey);
  }
}

// POST /__test/revoke: drops every grant and every token bound to one (refresh, access,
// authorization code) of accountId from the store; returns how many (expired ones not counted).
const REVOCABLE = new Set(['Grant', 'RefreshToken', 'AccessToken', 'AuthorizationCode']);

function revokeAccount(accountId) {
  let revoked = 0;
  for (const [key, entry] of [...store]) {
    const model = key.slice(0, key.indexOf(':'));
    if (!REVOCABLE.has(model) || entry.value?.accountId !== accountId) {
      continue;
    }
    store.delete(key);
    if (model === 'Grant') {
      store.delete(`grant:${key.slice(model.length + 1)}`);
    }
    if (!entry.expiresAt || entry.expiresAt > Date.now()) {
      revoked += 1;
    }
  }
  return revoked;
}

let issuer;
let handler;

function buildProvider() {
  const provider = new Provider(issuer, configuration());
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
    'discovery.error', 'jwks.error', 'end_session.error', 'backchannel.error']) {
    provider.on(event, (...args) => {
      const err = args.find((a) => a instanceof Error);
      const why = [];
      for (let e = err; e; e = e.cause) { // the whole chain: the root cause comes last
        why.push(e === err ? '' : e.message, e.error_description, e.error_detail);
      }
      const detail = why.filter(Boolean).join('; ');
      log(`${event}: ${err ? `${err.name}: ${err.message}${detail ? ` (${detail})` : ''}` : ''}`);
      if (err && event === 'server_error') {
        log(err.stack);
      }
    });
  }
  handler = provider.callback();
}

function rotate() {
  const key = newSigningKey();
  jwks = { keys: [key, ...jwks.keys] };
  const tmp = `${jwksFile}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, jwksFile);
  buildProvider();
  log(`rotated signing key: kid=${key.kid}`);
  return { kid: key.kid, kids: jwks.keys.map((k) => k.kid) };
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function testRoute(req, res) {
  try {
    if (req.url === '/__test/rotate' && req.method === 'POST') {
      sendJson(res, 200, rotate());
    } else if (req.url === '/__test/redirect_uris' && req.method === 'POST') {
      const body = await readJson(req);
      if (!Array.isArray(body.redirect_uris) || !body.redirect_uris.every((u) => typeof u === 'string')) {
        sendJson(res, 400, { error: 'redirect_uris must be an array of strings' });
        return;
      }
      const previous = redirectUris;
      redirectUris = body.redirect_uris;
      try {
        buildProvider();
      } catch (e) {
        redirectUris = previous;
        buildProvider();
        sendJson(res, 400, { error: String(e.message) });
        return;
      }
      log(`redirect_uris: ${redirectUris.join(' ')}`);
      sendJson(res, 200, { redirect_uris: redirectUris });
    } else if (req.url === '/__test/client_auth' && req.method === 'POST') {
      const body = await readJson(req);
      const previous = clientAuth;
      clientAuth = { method: body.method, jwksUri: body.jwks_uri };
      try {
        buildProvider();
      } catch (e) {
        clientAuth = previous;
        buildProvider();
        sendJson(res, 400, { error: String(e.message) });
        return;
      }
      log(`client auth: ${clientAuth.method} ${clientAuth.jwksUri ?? ''}`);
      sendJson(res, 200, { method: clientAuth.method, jwks_uri: clientAuth.jwksUri ?? null });
    } else if (req.url === '/__test/account' && req.method === 'POST') {
      const body = await readJson(req);
      if (typeof body.account !== 'string' || !Object.hasOwn(ACCOUNTS, body.account)) {
        sendJson(res, 404, { error: 'no such account' });
        return;
      }
      const bad = (body.groups !== undefined
          && (!Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string')))
        || (body.resort !== undefined && body.resort !== null && typeof body.resort !== 'string')
        || (body.name !== undefined && typeof body.name !== 'string');
      if (bad) {
        sendJson(res, 400, { error: 'groups: array of strings; resort: string or null; name: string' });
        return;
      }
      const account = ACCOUNTS[body.account];
      if (body.groups !== undefined) {
        account.groups = [...body.groups];
      }
      if (body.resort === null) {
        delete account.resort;
      } else if (body.resort !== undefined) {
        account.resort = body.resort;
      }
      if (body.name !== undefined) {
        account.name = body.name;
      }
      log(`account ${body.account}: ${JSON.stringify(account)}`);
      sendJson(res, 200, { sub: body.account, ...account });
    } else if (req.url === '/__test/revoke' && req.method === 'POST') {
      const body = await readJson(req);
      if (typeof body.account !== 'string' || !Object.hasOwn(ACCOUNTS, body.account)) {
        sendJson(res, 404, { error: 'no such account' });
        return;
      }
      const revoked = revokeAccount(body.account);
      log(`revoked ${revoked} grants and tokens of ${body.account}`);
      sendJson(res, 200, { revoked });
    } else {
      sendJson(res, 404, { error: 'no such test route' });
    }
  } catch (e) {
    log(`test route ${req.url}: ${e.stack || e}`);
    sendJson(res, 500, { error: String(e.message) });
  }
}

const server = https.createServer({
  cert: fs.readFileSync(path.join(dir, 'cert.pem')),
  key: fs.readFileSync(path.join(dir, 'key.pem')),
}, (req, res) => {
  if (req.url.startsWith('/__test/')) {
    testRoute(req, res);
  } else {
    handler(req, res);
  }
});

server.on('error', (e) => {
  log(`server: ${e.message}`);
  process.exit(1);
});

server.listen(Number(opts.port), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `https://127.0.0.1:${port}`;
  buildProvider();
  process.on('SIGHUP', () => {
    try {
      rotate();
    } catch (e) {
      log(`rotation failed: ${e.stack || e}`);
    }
  });
  const quit = () => process.exit(0);
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  if (opts['exit-on-stdin-eof']) {
    // The test harness holds our stdin open; when it dies, so do we.
    process.stdin.on('end', quit).on('error', quit).resume();
  }
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});
