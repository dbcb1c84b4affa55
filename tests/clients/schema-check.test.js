// The schema check itself: it passes on the repository, and fails on a
// deliberately broken copy of the schema until the changelog names the change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, print, visit } from 'graphql';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const script = join(here, 'schema-check.js');

function run(args) {
  return spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
}

test('the repository schema passes the check', () => {
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
  assert.match(out, /schema check: \d+ breaking change\(s\) since \d+\.\d+\.\d+, all recorded/);
});

test('a removed field fails the check until the changelog names it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pvgraph-schema-'));
  const original = readFileSync(join(root, 'schema', 'schema.graphql'), 'utf8');
  // Remove `totalCount` from ValueConnection: a breaking change for every client that asks for it.
  const broken = print(
    visit(parse(original), {
      ObjectTypeDefinition(node) {
        if (node.name.value !== 'ValueConnection') return undefined;
        assert.ok(node.fields.some((f) => f.name.value === 'totalCount'), 'ValueConnection has a totalCount');
        return { ...node, fields: node.fields.filter((f) => f.name.value !== 'totalCount') };
      },
    }),
  );
  const schema = join(dir, 'schema.graphql');
  writeFileSync(schema, broken);
  const changelog = (text) => {
    const file = join(dir, `changelog-${Math.random().toString(36).slice(2)}.md`);
    writeFileSync(file, text);
    return file;
  };

  const silent = changelog('# Changelog\n\n## [Unreleased]\n\n### Added\n- Something else.\n\n## [0.1.0]\n');
  const failed = run(['--schema', schema, '--changelog', silent]);
  assert.equal(failed.status, 1, failed.stdout + failed.stderr);
  assert.match(failed.stdout, /NOT RECORDED: FIELD_REMOVED: ValueConnection\.totalCount was removed/);

  // Naming another coordinate is not enough, nor is naming it under a released version.
  const other = changelog('# Changelog\n\n## [Unreleased]\n\n### Removed\n- `PrincipleConnection.totalCount`\n');
  assert.equal(run(['--schema', schema, '--changelog', other]).status, 1);
  const misplaced = changelog('# Changelog\n\n## [Unreleased]\n\n## [0.1.0]\n### Removed\n- `ValueConnection.totalCount`\n');
  assert.equal(run(['--schema', schema, '--changelog', misplaced]).status, 1);

  const recorded = changelog('# Changelog\n\n## [Unreleased]\n\n### Removed\n- `ValueConnection.totalCount`\n\n## [0.1.0]\n');
  const passed = run(['--schema', schema, '--changelog', recorded]);
  assert.equal(passed.status, 0, passed.stdout + passed.stderr);
  assert.match(passed.stdout, /recorded: FIELD_REMOVED: ValueConnection\.totalCount was removed/);
});
