// A real OpenID Connect provider for the sign-in tests (the npm package oidc-provider), on
// loopback. Started by tests/signin/conftest.py:
//
//   node server.mjs --port 4567 --redirect-uri http://127.0.0.1:8123/oidc/callback/
//
// It uses the package's own development login and consent pages (any password is accepted:
// the login names the account) and prints "ready <issuer>" once it listens.
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'redirect-uri': { type: 'string' },
    'client-id': { type: 'string', default: 'platform' },
    'client-secret': { type: 'string', default: 'platform-test-secret-0123456789abcdef' },
  },
});

const issuer = `http://127.0.0.1:${args.port}`;

// The people this provider knows; any other login is a person with no groups.
const PEOPLE = {
  ada: { name: 'Ada Lovelace', groups: ['staff-admins', 'engineering'] },
  grace: { name: 'Grace Hopper', groups: ['engineering'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: [args['redirect-uri']],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  cookies: { keys: ['signin-tests-only-not-a-secret'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const person = PEOPLE[id] || { name: id, groups: [] };
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          email: `${id}@example.com`,
          email_verified: true,
          name: person.name,
          groups: person.groups,
        };
      },
    };
  },
});

provider.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
