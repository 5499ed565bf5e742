// The snapshot-based dev→prod promotion guide (../shared/seeds), step by step, with Neon's CLI:
// every call the guide makes with curl goes through `neonctl api` with the same method, path and
// JSON body; branch chores use neonctl's own commands; data is checked with psql through the
// connection strings neonctl prints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startArgond, psql, waitOperations } from './lib/argond.mjs';

const NEONCTL = new URL('./node_modules/.bin/neonctl', import.meta.url).pathname;

let argond;
let configDir;
let projectId;
let prodId;       // changes with every finalized restore onto prod, as the guide warns
let devId;
let prodUri;      // must never change
let devUri;
let rollbackSnapshotId;

function neonctl(args) {
  const r = spawnSync(NEONCTL,
    ['--api-host', argond.apiHost, '--no-analytics', '--config-dir', configDir, '--no-color', ...args],
    { encoding: 'utf8', env: { ...process.env, NEON_API_KEY: argond.key }, timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(`neonctl ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}\n${argond.logTail()}`);
  }
  return args.includes('json') ? JSON.parse(r.stdout) : r.stdout.trim();
}

// `curl --request METHOD --url .../api/v2<path> --data '<body>'` from the guide.
function api(method, path, body) {
  const args = ['api', path, '-X', method, '-o', 'json'];
  if (body !== undefined) args.push('-d', JSON.stringify(body));
  return neonctl(args);
}

// "Poll each operation until finished" (the guide's polling loop), one id at a time.
async function pollOperations(ops) {
  assert.ok(ops.length > 0, 'the call returned operations to poll');
  for (const { id } of ops) {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { operation } = api('GET', `/projects/${projectId}/operations/${id}`);
      if (operation.status === 'finished') break;
      assert.notEqual(operation.status, 'failed', JSON.stringify(operation));
      assert.ok(Date.now() < deadline, `operation ${id} still ${operation.status}`);
      await sleep(100);
    }
  }
}

const branches = () => api('GET', `/projects/${projectId}/branches`).branches;
const byName = (name) => branches().find((b) => b.name === name);
const inDays = (days) => new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
const columns = (uri, table) =>
  psql(uri, `select string_agg(column_name, ',' order by ordinal_position) from information_schema.columns where table_name = '${table}'`);

before(async () => {
  argond = await startArgond();
  configDir = mkdtempSync(join(tmpdir(), 'argon-seed-promotion-'));
  const created = neonctl(['projects', 'create', '--name', 'shop', '-o', 'json']);
  projectId = created.project.id;
  await waitOperations(async () => api('GET', `/projects/${projectId}/operations`).operations, 'project creation');
  neonctl(['branches', 'rename', 'main', 'prod', '--project-id', projectId]);
  prodUri = neonctl(['connection-string', 'prod', '--project-id', projectId]);
  psql(prodUri, 'create table items (id int primary key, title text); insert into items values (1, \'prod item\')');
});

after(async () => {
  if (argond) await argond.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

test('phase 1: dev as a second root branch, from a snapshot of prod', async () => {
  // Step 1: find the production branch.
  const prod = branches().find((b) => b.default);
  assert.equal(prod.name, 'prod');
  prodId = prod.id;

  // Step 2: snapshot prod (JSON body, as the guide sends it).
  const snap = api('POST', `/projects/${projectId}/branches/${prodId}/snapshot`, { name: 'prod_baseline_snapshot' });
  assert.equal(snap.snapshot.name, 'prod_baseline_snapshot');
  assert.equal(snap.snapshot.source_branch_id, prodId);
  await pollOperations(snap.operations);

  // Step 3a: restore without finalizing: a new root branch, prod untouched.
  const restored = api('POST', `/projects/${projectId}/snapshots/${snap.snapshot.id}/restore`, { finalize_restore: false });
  devId = restored.branch.id;
  assert.notEqual(devId, prodId);
  assert.equal(restored.branch.restored_from, snap.snapshot.id);
  assert.equal('parent_id' in restored.branch, false, 'the restored branch is a root branch');
  await pollOperations(restored.operations);

  // Step 3b: rename it to dev and give it a compute.
  const renamed = api('PATCH', `/projects/${projectId}/branches/${devId}`, { branch: { name: 'dev' } });
  assert.equal(renamed.branch.name, 'dev');
  const ep = api('POST', `/projects/${projectId}/endpoints`, { endpoint: { branch_id: devId, type: 'read_write' } });
  assert.equal(ep.endpoint.branch_id, devId);
  await pollOperations(ep.operations);

  // Step 4: the baseline snapshot is no longer needed; dev does not depend on it.
  const del = api('DELETE', `/projects/${projectId}/snapshots/${snap.snapshot.id}`);
  await pollOperations(del.operations);
  assert.deepEqual(api('GET', `/projects/${projectId}/snapshots`).snapshots, []);

  // Step 5: protect prod.
  const prot = api('PATCH', `/projects/${projectId}/branches/${prodId}`, { branch: { protected: true } });
  assert.equal(prot.branch.protected, true);

  devUri = neonctl(['connection-string', 'dev', '--project-id', projectId]);
  assert.notEqual(devUri, prodUri);
  assert.equal(psql(devUri, 'select title from items'), 'prod item');
  psql(devUri, 'insert into items values (2, \'dev only\')');
  assert.equal(psql(prodUri, 'select count(*) from items'), '1', 'dev and prod are independent');
});

test('phase 2: preview branches of dev with an expiry; changes applied to dev', async () => {
  const preview = neonctl(['branches', 'create', '--project-id', projectId, '--name', 'dev_feature_x',
                           '--parent', 'dev', '-o', 'json']);
  assert.equal(preview.branch.parent_id, devId);
  await waitOperations(async () => api('GET', `/projects/${projectId}/operations`).operations, 'preview creation');
  const expiry = inDays(3);
  const patched = api('PATCH', `/projects/${projectId}/branches/${preview.branch.id}`, { branch: { expires_at: expiry } });
  assert.equal(patched.branch.expires_at, expiry);
  const previewUri = neonctl(['connection-string', 'dev_feature_x', '--project-id', projectId]);
  psql(previewUri, 'alter table items add column price numeric');
  assert.equal(columns(previewUri, 'items'), 'id,title,price');

  // Validated: the same migration goes to dev; the preview is thrown away.
  psql(devUri, 'alter table items add column price numeric; update items set price = 9.5');
  neonctl(['branches', 'delete', 'dev_feature_x', '--project-id', projectId]);
  assert.equal(byName('dev_feature_x'), undefined);
});

test('phase 3: promote dev onto prod; the prod connection string now serves dev\'s state', async () => {
  // Writes to prod after the rollback point are lost by promotion, as the guide says.
  const pre = api('POST', `/projects/${projectId}/branches/${prodId}/snapshot`,
                  { name: 'prod_pre_promotion', expires_at: inDays(30) });
  rollbackSnapshotId = pre.snapshot.id;
  await pollOperations(pre.operations);
  const cand = api('POST', `/projects/${projectId}/branches/${devId}/snapshot`,
                   { name: 'dev_promotion_candidate', expires_at: inDays(1) });
  await pollOperations(cand.operations);

  const restore = api('POST', `/projects/${projectId}/snapshots/${cand.snapshot.id}/restore`,
                      { target_branch_id: prodId, finalize_restore: true });
  await pollOperations(restore.operations);

  const prod = byName('prod');
  assert.notEqual(prod.id, prodId, 'the promoted prod is a new branch');
  assert.equal(prod.default, true);
  assert.equal(prod.protected, true);
  assert.equal(prod.restore_status, 'finalized');
  assert.equal(prod.restored_as, prodId);
  const old = byName('prod (old)');
  assert.equal(old.id, prodId);
  assert.equal(old.protected, false);
  assert.equal(neonctl(['connection-string', 'prod', '--project-id', projectId]), prodUri, 'connection string unchanged');

  // prod now has dev's schema and rows, through the unchanged string.
  assert.equal(columns(prodUri, 'items'), 'id,title,price');
  assert.equal(psql(prodUri, 'select string_agg(title, \',\' order by id) from items'), 'prod item,dev only');
  prodId = prod.id;

  // Clean-up: the backup branch and the candidate snapshot.
  neonctl(['branches', 'delete', old.id, '--project-id', projectId]);
  assert.equal(byName('prod (old)'), undefined);
  await pollOperations(api('DELETE', `/projects/${projectId}/snapshots/${cand.snapshot.id}`).operations);
  assert.deepEqual(api('GET', `/projects/${projectId}/snapshots`).snapshots.map((s) => s.id), [rollbackSnapshotId]);
  assert.equal(psql(prodUri, 'select count(*) from items'), '2', 'prod is untouched by the clean-up');
});

test('phase 4: refresh dev from prod', async () => {
  psql(prodUri, 'insert into items values (3, \'sold in prod\', 1)');
  psql(devUri, 'create table scratch (x int)');
  const snap = api('POST', `/projects/${projectId}/branches/${prodId}/snapshot`, { name: 'prod_refresh' });
  await pollOperations(snap.operations);
  const restore = api('POST', `/projects/${projectId}/snapshots/${snap.snapshot.id}/restore`,
                      { target_branch_id: devId, finalize_restore: true });
  await pollOperations(restore.operations);

  const dev = byName('dev');
  assert.notEqual(dev.id, devId);
  assert.equal(neonctl(['connection-string', 'dev', '--project-id', projectId]), devUri);
  assert.equal(psql(devUri, 'select count(*) from items'), '3');
  assert.equal(psql(devUri, 'select to_regclass(\'scratch\') is null'), 't', 'dev\'s own table is gone');
  const old = byName('dev (old)');
  assert.equal(old.id, devId);
  devId = dev.id;
  neonctl(['branches', 'delete', old.id, '--project-id', projectId]);
  await pollOperations(api('DELETE', `/projects/${projectId}/snapshots/${snap.snapshot.id}`).operations);
});

test('phase 5: roll prod back to the pre-promotion snapshot', async () => {
  const listed = api('GET', `/projects/${projectId}/snapshots`).snapshots;
  const rollback = listed.find((s) => s.name === 'prod_pre_promotion');
  assert.equal(rollback.id, rollbackSnapshotId);
  // Its source is the branch that is gone now; target_branch_id names today's prod.
  const restore = api('POST', `/projects/${projectId}/snapshots/${rollback.id}/restore`,
                      { target_branch_id: prodId, finalize_restore: true });
  await pollOperations(restore.operations);

  assert.equal(columns(prodUri, 'items'), 'id,title', 'the pre-promotion schema');
  assert.equal(psql(prodUri, 'select string_agg(title, \',\' order by id) from items'), 'prod item');
  const prod = byName('prod');
  assert.equal(prod.protected, true);
  assert.equal(prod.default, true);
  neonctl(['branches', 'delete', byName('prod (old)').id, '--project-id', projectId]);
  assert.deepEqual(branches().map((b) => b.name).sort(), ['dev', 'prod']);
  assert.equal(psql(devUri, 'select count(*) from items'), '3', 'dev is not affected by prod\'s rollback');
});
