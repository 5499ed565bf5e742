// Neon's official CLI (neonctl), pointed at argond by `--api-host` only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArgond, waitOperations } from './lib/argond.mjs';

const NEONCTL = new URL('./node_modules/.bin/neonctl', import.meta.url).pathname;

let argond;
let configDir;
let projectId;
let mainBranch;
let ownerPassword;

// Runs neonctl; returns { status, stdout, stderr } and parsed JSON when `-o json` was asked for.
function neonctl(args, { expectFailure = false } = {}) {
  const r = spawnSync(NEONCTL,
    ['--api-host', argond.apiHost, '--no-analytics', '--config-dir', configDir, '--no-color', ...args],
    { encoding: 'utf8', env: { ...process.env, NEON_API_KEY: argond.key }, timeout: 120_000 });
  if (!expectFailure && r.status !== 0) {
    throw new Error(`neonctl ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}\n${argond.logTail()}`);
  }
  const json = args.includes('json') && r.status === 0 ? JSON.parse(r.stdout) : undefined;
  return { ...r, json };
}

const waitProject = (what) =>
  waitOperations(async () => neonctl(['operations', 'list', '--project-id', projectId, '-o', 'json']).json, what);

before(async () => {
  argond = await startArgond();
  configDir = mkdtempSync(join(tmpdir(), 'argon-neonctl-'));
});

after(async () => {
  if (argond) await argond.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

test('me shows the argond user', () => {
  const me = neonctl(['me', '-o', 'json']).json;
  assert.equal(typeof me.id, 'string');
  assert.equal(typeof me.email, 'string');
});

test('projects create prints the project and a connection string', async () => {
  const out = neonctl(['projects', 'create', '--name', 'cli-project', '-o', 'json']).json;
  assert.equal(out.project.name, 'cli-project');
  assert.equal(out.connection_uris.length, 1);
  projectId = out.project.id;
  ownerPassword = out.connection_uris[0].connection_parameters.password;
  assert.ok(ownerPassword.length >= 16);
  await waitProject('project creation');
  const branches = neonctl(['branches', 'list', '--project-id', projectId, '-o', 'json']).json;
  assert.equal(branches.length, 1);
  mainBranch = branches[0].id;
  assert.equal(branches[0].name, 'main');
  assert.equal(branches[0].default, true);
});

test('projects list and get see it', () => {
  const list = neonctl(['projects', 'list', '-o', 'json']).json;
  assert.ok(list.projects.some((p) => p.id === projectId));
  const got = neonctl(['projects', 'get', projectId, '-o', 'json']).json;
  assert.equal(got.id, projectId);
  assert.equal(got.name, 'cli-project');
  const table = neonctl(['projects', 'list']).stdout;
  assert.match(table, /cli-project/);
});

test('roles and databases list match the branch\'s Postgres', () => {
  const roles = neonctl(['roles', 'list', '--project-id', projectId, '--branch', 'main', '-o', 'json']).json;
  assert.deepEqual(roles.map((r) => r.name), ['neondb_owner']);
  const dbs = neonctl(['databases', 'list', '--project-id', projectId, '--branch', 'main', '-o', 'json']).json;
  assert.deepEqual(dbs.map((d) => d.name), ['neondb']);
  assert.equal(dbs[0].owner_name, 'neondb_owner');
  const owner = argond.sql(mainBranch, "select pg_get_userbyid(datdba) from pg_database where datname = 'neondb'");
  assert.equal(owner, 'neondb_owner');
});

test('connection-string reveals the owner password for the branch endpoint', () => {
  const s = neonctl(['connection-string', 'main', '--project-id', projectId]).stdout.trim();
  const uri = new URL(s);
  assert.equal(uri.username, 'neondb_owner');
  assert.equal(decodeURIComponent(uri.password), ownerPassword);
  assert.match(uri.hostname, /^ep-[a-z]+-[a-z]+-\d+\./);
  assert.equal(uri.pathname, '/neondb');
  assert.equal(uri.searchParams.get('channel_binding'), 'require');
  // The string works verbatim: TLS, SCRAM-SHA-256-PLUS, the endpoint from the host name (SNI).
  const psql = spawnSync('psql', [s, '-XAtc', 'select current_user'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(psql.status, 0, psql.stderr);
  assert.equal(psql.stdout.trim(), 'neondb_owner');
});

test('branches create, rename, get, delete (by name)', async () => {
  const created = neonctl(['branches', 'create', '--project-id', projectId, '--name', 'dev', '-o', 'json']).json;
  const devId = created.branch.id;
  assert.equal(created.branch.parent_id, mainBranch);
  assert.equal(created.endpoints.length, 1, 'neonctl asks for a read_write compute by default');
  await waitProject('branch creation');
  assert.equal(argond.sql(devId, "select count(*) from pg_roles where rolname = 'neondb_owner'"), '1');

  neonctl(['branches', 'rename', 'dev', 'dev-renamed', '--project-id', projectId]);
  const got = neonctl(['branches', 'get', 'dev-renamed', '--project-id', projectId, '-o', 'json']).json;
  assert.equal(got.id, devId);
  assert.equal(got.name, 'dev-renamed');
  const names = neonctl(['branches', 'list', '--project-id', projectId, '-o', 'json']).json.map((b) => b.name);
  assert.deepEqual(names.sort(), ['dev-renamed', 'main']);

  const refused = neonctl(['branches', 'delete', 'main', '--project-id', projectId], { expectFailure: true });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr + refused.stdout, /default/i);

  neonctl(['branches', 'delete', 'dev-renamed', '--project-id', projectId]);
  await waitProject('branch deletion');
  const after = neonctl(['branches', 'list', '--project-id', projectId, '-o', 'json']).json;
  assert.deepEqual(after.map((b) => b.id), [mainBranch]);
  assert.equal(argond.computeRunning(devId), false);
});

test('endpoints list, suspend and start through `neonctl api`', async () => {
  const eps = neonctl(['api', `/projects/${projectId}/endpoints`, '-o', 'json']).json.endpoints;
  assert.equal(eps.length, 1);
  const ep = eps[0];
  assert.equal(ep.branch_id, mainBranch);

  neonctl(['api', `/projects/${projectId}/endpoints/${ep.id}/suspend`, '-X', 'POST', '-o', 'json']);
  await waitProject('suspend');
  let now = neonctl(['api', `/projects/${projectId}/endpoints/${ep.id}`, '-o', 'json']).json.endpoint;
  assert.equal(now.current_state, 'idle');
  assert.equal(argond.computeRunning(mainBranch), false);

  neonctl(['api', `/projects/${projectId}/endpoints/${ep.id}/start`, '-X', 'POST', '-o', 'json']);
  await waitProject('start');
  now = neonctl(['api', `/projects/${projectId}/endpoints/${ep.id}`, '-o', 'json']).json.endpoint;
  assert.equal(now.current_state, 'active');
  assert.equal(argond.sql(mainBranch, 'select 1'), '1');
});

test('branches reset --parent gives a branch its parent\'s current data, same id', async () => {
  const created = neonctl(['branches', 'create', '--project-id', projectId, '--name', 'kid', '-o', 'json']).json;
  const kidId = created.branch.id;
  await waitProject('branch creation');
  argond.sql(mainBranch, 'CREATE TABLE reset_probe (v int); INSERT INTO reset_probe VALUES (42)', 'neondb');
  assert.equal(argond.sql(kidId, "SELECT to_regclass('reset_probe') IS NULL", 'neondb'), 't');
  const reset = neonctl(['branches', 'reset', 'kid', '--parent', '--project-id', projectId, '-o', 'json']).json;
  assert.equal(reset.id, kidId);
  await waitProject('branch reset');
  assert.equal(argond.sql(kidId, 'SELECT v FROM reset_probe', 'neondb'), '42');
  neonctl(['branches', 'delete', 'kid', '--project-id', projectId]);
  await waitProject('branch deletion');
});

// Point-in-time history as neonctl 5.0.1 asks for it: `branches create --parent <timestamp>`
// (parent_timestamp on the default branch) and `branches restore <branch> ^self@<timestamp>`.
// neonctl accepts milliseconds; the next write waits past that millisecond.
test('branches create --parent <timestamp> and branches restore ^self@<timestamp> reach the past', async () => {
  const rows = (branchId) => argond.sql(branchId, "SELECT string_agg(v::text, ',' ORDER BY v) FROM pitr", 'neondb');
  argond.sql(mainBranch, 'CREATE TABLE pitr (v int); INSERT INTO pitr VALUES (1)', 'neondb');
  const t = argond.sql(mainBranch,
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
  await new Promise((r) => setTimeout(r, 20));
  argond.sql(mainBranch, 'INSERT INTO pitr VALUES (2)', 'neondb');

  const created = neonctl(['branches', 'create', '--project-id', projectId, '--name', 'past',
    '--parent', t, '-o', 'json']).json;
  assert.equal(created.branch.parent_id, mainBranch);
  await waitProject('branch at a time');
  assert.equal(rows(created.branch.id), '1');
  assert.equal(rows(mainBranch), '1,2');

  neonctl(['branches', 'restore', 'main', `^self@${t}`, '--preserve-under-name', 'main-before',
    '--project-id', projectId]);
  await waitProject('restore to a time');
  assert.equal(rows(mainBranch), '1');
  const branches = neonctl(['branches', 'list', '--project-id', projectId, '-o', 'json']).json;
  const before = branches.find((b) => b.name === 'main-before');
  assert.ok(before, 'the state before the restore is kept');
  assert.equal(branches.find((b) => b.id === mainBranch).parent_id, before.id);

  const future = neonctl(['branches', 'create', '--project-id', projectId, '--parent',
    '2020-01-01T00:00:00Z'], { expectFailure: true });
  assert.notEqual(future.status, 0);
  assert.match(future.stderr + future.stdout, /before retention window/);
  neonctl(['branches', 'delete', 'past', '--project-id', projectId]);
  await waitProject('branch deletion');
});

test('projects delete removes it', () => {
  neonctl(['projects', 'delete', projectId]);
  const r = neonctl(['projects', 'get', projectId], { expectFailure: true });
  assert.notEqual(r.status, 0);
});
