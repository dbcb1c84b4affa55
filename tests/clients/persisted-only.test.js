// `--persisted-queries FILE --persisted-only` on the real binary, with an
// Apollo persisted query manifest: listed queries run by hash, others are refused.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './server.js';

const LISTED = 'query ValueCount { values { totalCount } }';
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

let server;
before(async () => {
  const manifest = join(mkdtempSync(join(tmpdir(), 'pvgraph-manifest-')), 'persisted-query-manifest.json');
  writeFileSync(
    manifest,
    JSON.stringify({
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: [{ id: sha256(LISTED), name: 'ValueCount', type: 'query', body: LISTED }],
    }),
  );
  server = await startServer({ args: ['--persisted-queries', manifest, '--persisted-only'] });
});
after(() => server?.stop());

const persisted = (hash) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

test('a listed query runs by its hash over GET', async () => {
  const url = `${server.url}?extensions=${encodeURIComponent(JSON.stringify(persisted(sha256(LISTED))))}`;
  const response = await fetch(url, { headers: { accept: 'application/graphql-response+json' } });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.data.values.totalCount, 11);
});

test('a query not in the list is refused', async () => {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: '{ values { totalCount } }' }),
  });
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.errors[0].extensions.code, 'PERSISTED_QUERY_NOT_ALLOWED');
  assert.equal(body.data, undefined);
});
