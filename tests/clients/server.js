// Starts the real pvgraph binary on an ephemeral 127.0.0.1 port over a fresh
// SQLite file, and stops it when the test is done.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The binary under test: PVGRAPH_BIN, else the debug build of this checkout. */
export function binary() {
  if (process.env.PVGRAPH_BIN) return process.env.PVGRAPH_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
  return join(target, 'debug', 'pvgraph');
}

/** The editor token of each running server, by its GraphQL URL. */
const tokens = new Map();

/**
 * Serves the King County seed (or nothing, with `seed: false`) and resolves
 * to `{ url, ws, stop }` once the server listens. Extra flags go in `args`.
 */
export async function startServer({ seed = true, args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pvgraph-client-'));
  const store = `sqlite://${join(dir, 'pvgraph.db')}`;
  // An editor of King County, issued by the real command before the server starts.
  const token = execFileSync(binary(), ['token', 'create', '--organisation', 'kc', '--role', 'editor', '--store', store], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
  const flags = ['serve', '--listen', '127.0.0.1:0', '--store', store];
  if (!seed) flags.push('--no-seed');
  const child = spawn(binary(), [...flags, ...args], {
    env: { ...process.env, RUST_LOG: 'warn,pvgraph=info', PVGRAPH_LOG_FORMAT: 'text', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pvgraph did not start:\n${output}`)), 60_000);
    const look = (chunk) => {
      output += chunk;
      const found = output.match(/serves GraphiQL at http:\/\/([0-9.:]+)\//);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pvgraph exited with ${code}:\n${output}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  tokens.set(`http://${address}/graphql`, token);
  return { url: `http://${address}/graphql`, ws: `ws://${address}/graphql`, base: `http://${address}`, token, stop };
}

/**
 * Sends a mutation. Every mutation of these tests goes through here, so that
 * credentials, once the server asks for them, are added in one place.
 */
export async function mutate(url, query, variables = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      authorization: `Bearer ${tokens.get(url)}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`the mutation failed: ${JSON.stringify(body.errors)}`);
  return body.data;
}
