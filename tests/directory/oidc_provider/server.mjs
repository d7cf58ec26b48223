// A real OpenID Provider for the sign-in tests: panva's oidc-provider
// (OpenID Certified) with discovery, signed ID tokens, PKCE, refresh tokens
// and RP-initiated logout. Only the login page is ours: it checks the
// password in USERS_FILE, read again at every use so a test can change a
// person's groups, or disable them, between two sign-ins.
//
// Environment: PORT, USERS_FILE, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS and
// POST_LOGOUT_REDIRECT_URIS (comma-separated).

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const list = (name) => (process.env[name] || '').split(',').filter(Boolean);

function users() {
  return JSON.parse(fs.readFileSync(process.env.USERS_FILE, 'utf8'));
}

function account(id) {
  const person = users()[id];
  if (!person || person.disabled) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        preferred_username: id,
        email: person.email,
        email_verified: true,
        given_name: person.given_name,
        family_name: person.family_name,
        groups: person.groups || [],
      };
    },
  };
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: list('REDIRECT_URIS'),
    post_logout_redirect_uris: list('POST_LOGOUT_REDIRECT_URIS'),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    return account(id);
  },
  // A refresh token for every code grant of a client allowed to refresh, so
  // a token's use can ask again about its user's groups.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

function page(res, uid, error) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider</h1>${error ? `<p id="op-error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Username <input id="op-username" name="username" autofocus></label>
<label>Password <input id="op-password" name="password" type="password"></label>
<button id="op-submit" type="submit">Sign in</button></form></body></html>`);
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return Object.fromEntries(new URLSearchParams(text));
}

async function consent(req, res, interaction) {
  const { prompt: { details }, params, session: { accountId } } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function interact(req, res) {
  const interaction = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    if (interaction.prompt.name === 'consent') return consent(req, res, interaction);
    return page(res, interaction.uid);
  }
  const { username, password } = await body(req);
  const person = users()[username];
  if (!person || person.password !== password) return page(res, interaction.uid, 'Wrong username or password.');
  if (person.disabled) return page(res, interaction.uid, 'This account is disabled.');
  return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
}

const handler = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interact(req, res).catch((error) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));
