// What the browser tests share: the real pvgraph binary on a temporary SQLite
// file (seeded with King County on first start) on an ephemeral 127.0.0.1
// port, Debian's Chromium, and GraphQL over plain HTTP for checking.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { after, before } from 'node:test';

import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const binary = process.env.PVGRAPH_BIN ?? join(root, 'target', 'debug', 'pvgraph');
export const screenshots = join(root, 'target', 'screenshots');

/**
 * Starts pvgraph and Chromium before a test file's tests and stops them
 * after; the returned object holds them (`server`, `browser`) once started.
 */
export function pvgraphAndChromium() {
  const live = {};
  before(async () => {
    [live.server, live.browser] = await Promise.all([startPvgraph(), launchChromium()]);
  });
  after(async () => {
    await live.browser?.close();
    await live.server?.stop();
  });
  return live;
}

/** Starts pvgraph and resolves once it says where it listens. */
export async function startPvgraph() {
  const dir = await mkdtemp(join(tmpdir(), 'pvgraph-browser-'));
  // An editor of King County, issued by the real command before the server starts.
  const token = execFileSync(
    binary,
    ['token', 'create', '--organisation', 'kc', '--role', 'editor', '--store', `sqlite://${join(dir, 'pvgraph.db')}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  ).trim();
  const child = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      PVGRAPH_LISTEN: '127.0.0.1:0',
      PVGRAPH_STORE: `sqlite://${join(dir, 'pvgraph.db')}`,
      PVGRAPH_LOG_FORMAT: 'json',
      RUST_LOG: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((found, failed) => {
    const timer = setTimeout(() => failed(new Error('pvgraph never said where it listens')), 60_000);
    child.once('exit', (code) => failed(new Error(`pvgraph stopped early with ${code}`)));
    lines.on('line', (line) => {
      const message = JSON.parse(line).fields?.message ?? '';
      const address = message.match(/http:\/\/[^/\s]+/);
      if (address) {
        clearTimeout(timer);
        found(address[0]);
      }
    });
  });
  // Keep reading the log so the server never blocks on a full pipe.
  lines.on('line', () => {});
  return {
    url,
    token,
    async stop() {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile. */
export async function launchChromium() {
  await mkdir(screenshots, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A page that records the address of every request it makes, WebSockets included. */
export async function recordingPage(browser) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('websocket', (socket) => requests.push(socket.url()));
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  return { page, requests, problems };
}

/** Every request went to the server under test, none elsewhere. */
export function assertOnlyLocal(requests, server) {
  assert.ok(requests.length > 0, 'the page made requests');
  const host = new URL(server.url).host;
  const elsewhere = requests.filter((url) => !url.startsWith('data:') && new URL(url).host !== host);
  assert.deepEqual(elsewhere, [], 'requests left the server under test');
  assert.ok(requests.every((url) => url.startsWith('data:') || new URL(url).hostname === '127.0.0.1'));
}

/** POSTs one GraphQL operation and returns the whole answer. */
export async function graphql(server, query, variables = {}, token = undefined) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

/**
 * Runs a mutation over HTTP. Every test mutation goes through here, so that
 * the day mutations need a token it is added in this one place.
 */
export async function mutate(server, query, variables = {}) {
  const body = await graphql(server, query, variables, server.token);
  if (body.errors) throw new Error(`the mutation failed: ${JSON.stringify(body.errors)}`);
  return body.data;
}
