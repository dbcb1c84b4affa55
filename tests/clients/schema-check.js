#!/usr/bin/env node
// Compares schema/schema.graphql with the newest released schema
// (schema/released/<version>.graphql) using graphql-js's findBreakingChanges,
// and fails on every breaking change that the Unreleased section of
// CHANGELOG.md does not name by its schema coordinate (e.g. `Query.values`).
//
// Usage: node schema-check.js [--schema FILE] [--released DIR] [--changelog FILE]
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, findBreakingChanges } from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

/** Compares dotted version numbers, 0.10.0 after 0.9.0. */
function byVersion(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The text of the changelog's Unreleased section. */
export function unreleased(changelog) {
  const start = changelog.search(/^## \[?Unreleased\]?/im);
  if (start < 0) return '';
  const rest = changelog.slice(start).split('\n').slice(1).join('\n');
  const next = rest.search(/^## /m);
  return next < 0 ? rest : rest.slice(0, next);
}

/** The schema coordinate a breaking change concerns: the first word of its description. */
export function coordinate(change) {
  return change.description.split(/\s+/)[0].replace(/[.,:]+$/, '');
}

export function check({ schema, releasedDir, changelog }) {
  const versions = readdirSync(releasedDir)
    .filter((f) => f.endsWith('.graphql'))
    .map((f) => f.slice(0, -'.graphql'.length))
    .sort(byVersion);
  if (versions.length === 0) throw new Error(`no released schema in ${releasedDir}`);
  const version = versions[versions.length - 1];
  const released = buildSchema(readFileSync(join(releasedDir, `${version}.graphql`), 'utf8'));
  const current = buildSchema(readFileSync(schema, 'utf8'));
  const notes = unreleased(readFileSync(changelog, 'utf8'));
  const changes = findBreakingChanges(released, current).map((change) => ({
    ...change,
    coordinate: coordinate(change),
    recorded: notes.includes(coordinate(change)),
  }));
  return { version, changes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { version, changes } = check({
    schema: option('--schema', join(root, 'schema', 'schema.graphql')),
    releasedDir: option('--released', join(root, 'schema', 'released')),
    changelog: option('--changelog', join(root, 'CHANGELOG.md')),
  });
  const missing = changes.filter((c) => !c.recorded);
  for (const c of changes) {
    console.log(`${c.recorded ? 'recorded' : 'NOT RECORDED'}: ${c.type}: ${c.description}`);
  }
  if (missing.length > 0) {
    console.error(
      `${missing.length} breaking change(s) since ${version} not named in CHANGELOG.md's Unreleased section ` +
        `(name each by its coordinate, e.g. \`${missing[0].coordinate}\`).`,
    );
    process.exit(1);
  }
  console.log(`schema check: ${changes.length} breaking change(s) since ${version}, all recorded`);
}
