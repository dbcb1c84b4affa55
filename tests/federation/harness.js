// The real parts of a federated graph, on 127.0.0.1 and ephemeral ports: the
// pvgraph binary over a temporary seeded SQLite file, the reference budget
// subgraph, and an Apollo gateway over their composed supergraph.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { parse } from 'graphql';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway } from '@apollo/gateway';
import { composeServices } from '@apollo/composition';

const repository = resolve(fileURLToPath(import.meta.url), '../../..');

/** The pvgraph binary: PVGRAPH_BIN, or the debug build in CARGO_TARGET_DIR or target/. */
export function pvgraphBinary() {
  const binary =
    process.env.PVGRAPH_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(repository, 'target'), 'debug', 'pvgraph');
  if (!existsSync(binary)) {
    throw new Error(`no pvgraph binary at ${binary}: run \`cargo build\` first, or set PVGRAPH_BIN`);
  }
  return binary;
}

/** Starts pvgraph on a fresh SQLite file seeded with the King County data; resolves to { url, stop }. */
export async function startPvgraph() {
  const dir = mkdtempSync(join(tmpdir(), 'pvgraph-federation-'));
  const child = spawn(
    pvgraphBinary(),
    ['serve', '--listen', '127.0.0.1:0', '--store', `sqlite://${join(dir, 'pvgraph.db')}`, '--log-format', 'json'],
    { env: { ...process.env, RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((done) => child.once('exit', done));
  const log = [];
  const url = await new Promise((found, failed) => {
    const timer = setTimeout(() => failed(new Error(`pvgraph did not start in 60 s:\n${log.join('\n')}`)), 60_000);
    const watch = (stream) =>
      createInterface({ input: stream }).on('line', (line) => {
        log.push(line);
        const address = /serves GraphiQL at (http:\/\/127\.0\.0\.1:\d+)\//.exec(line);
        if (address) {
          clearTimeout(timer);
          found(`${address[1]}/graphql`);
        }
      });
    watch(child.stdout);
    watch(child.stderr);
    child.once('exit', (code) => {
      clearTimeout(timer);
      failed(new Error(`pvgraph exited with ${code} before serving:\n${log.join('\n')}`));
    });
  });
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, stop };
}

/** Serves an Apollo server (a subgraph or the gateway) on an ephemeral port of 127.0.0.1. */
export async function serve(config) {
  const server = new ApolloServer(config);
  const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
  return { url, stop: () => server.stop() };
}

/** POSTs a GraphQL request; resolves to the whole response body. */
export async function post(url, query, variables = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

/** Like `post`, but throws on any error and resolves to `data`. */
export async function data(url, query, variables = {}) {
  const body = await post(url, query, variables);
  if (body.errors) throw new Error(`${url}: ${JSON.stringify(body.errors, null, 2)}`);
  return body.data;
}

/** A subgraph's SDL, as it serves it through `_service`. */
export async function serviceSdl(url) {
  return (await data(url, '{ _service { sdl } }'))._service.sdl;
}

/**
 * Composes subgraphs ({ name, url, sdl }) into a supergraph SDL. Composition
 * errors throw, with every message, so a test fails saying what broke.
 */
export function compose(subgraphs) {
  const result = composeServices(subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
  if (result.errors) {
    throw new Error(`composition failed:\n${result.errors.map((e) => `- ${e.message}`).join('\n')}`);
  }
  return result.supergraphSdl;
}

/** Serves a static supergraph through an Apollo gateway. */
export async function startGateway(supergraphSdl) {
  return serve({ gateway: new ApolloGateway({ supergraphSdl }) });
}
