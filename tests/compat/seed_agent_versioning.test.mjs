// The "database versioning with snapshots" guide for AI agents (../shared/seeds), with Neon's
// TypeScript SDK as its demo app uses it: one project per agent project, its root branch is the
// active branch, a snapshot after every version (v0 empty → v1 contacts → v2 role/company →
// v3 tags), rollbacks in place with `finalize_restore: true`, previews with `false`. The schema is
// checked with psql through the connection string the SDK returns, which must never change.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { neonApi, startArgond, psql, waitOperations } from './lib/argond.mjs';

let argond;
let api;
let projectId;
let activeBranchId;   // re-read after every finalized restore, as the guide says
let activeUri;
const versions = {};  // v0..v3 → snapshot id

// Polls the operations a call returned until each has ended (the guide's waitForOperation).
const waitForOperations = (ops) => waitOperations(() => Promise.all(ops.map(
  async ({ id }) => (await api.getProjectOperation(projectId, id)).data.operation)));

const connectionUri = async (branchId) => (await api.getConnectionUri({
  projectId, branch_id: branchId, database_name: 'neondb', role_name: 'neondb_owner' })).data.uri;

// The app's schema, as the agent would inspect it: table(columns) for every user table.
const schema = (uri) => psql(uri, `
  select coalesce(string_agg(t, ' ' order by t), '') from (
    select table_name || '(' || string_agg(column_name, ',' order by ordinal_position) || ')' as t
      from information_schema.columns where table_schema = 'public' group by table_name) s`);

const SCHEMAS = {
  v0: '',
  v1: 'contacts(id,name,email)',
  v2: 'contacts(id,name,email,role,company)',
  v3: 'contacts(id,name,email,role,company,tags)',
};

async function snapshotVersion(version) {
  // As the guide's demo app does: stamped with the time the version was saved.
  const { data } = await api.createSnapshot({ projectId, branchId: activeBranchId, name: `version-${version}`,
                                             timestamp: new Date().toISOString() });
  await waitForOperations(data.operations);
  versions[version] = data.snapshot.id;
}

// Rollback: restore onto the active branch, poll, then re-read the active branch id.
async function rollback(version) {
  const { data } = await api.restoreSnapshot({ projectId, snapshotId: versions[version] },
                                             { target_branch_id: activeBranchId, finalize_restore: true });
  assert.equal(data.branch.restored_from, versions[version]);
  await waitForOperations(data.operations);
  const branches = (await api.listProjectBranches({ projectId })).data.branches;
  const active = branches.find((b) => b.name === 'main');
  const orphan = branches.find((b) => b.id === activeBranchId);
  assert.equal(active.id, data.branch.id, 'the restored branch took the active branch\'s name');
  assert.equal(orphan.name, 'main (old)');
  assert.equal('parent_id' in active, false, 'the active branch stays a root branch');
  // Cleanup as the guide advises: delete the orphan once the restore is verified.
  await api.deleteProjectBranch({ projectId, branchId: orphan.id });
  activeBranchId = active.id;
  assert.equal(await connectionUri(activeBranchId), activeUri, 'the connection string never changes');
}

before(async () => {
  argond = await startArgond();
  api = neonApi(argond);
  const { data } = await api.createProject({ project: { name: 'agent-app' } });
  projectId = data.project.id;
  activeBranchId = data.branch.id;
  activeUri = data.connection_uris[0].connection_uri;
  await waitOperations(async () => (await api.listProjectOperations({ projectId })).data.operations, 'project');
});

after(async () => {
  if (argond) await argond.stop();
});

test('the agent builds v0..v3 and snapshots each version', async () => {
  await snapshotVersion('v0');
  psql(activeUri, 'create table contacts (id serial primary key, name text not null, email text)');
  psql(activeUri, "insert into contacts (name, email) values ('Ada', 'ada@example.com')");
  await snapshotVersion('v1');
  psql(activeUri, 'alter table contacts add column role text, add column company text');
  await snapshotVersion('v2');
  psql(activeUri, "alter table contacts add column tags text[] default '{}'");
  await snapshotVersion('v3');
  assert.equal(schema(activeUri), SCHEMAS.v3);
  const listed = (await api.listSnapshots(projectId)).data.snapshots;
  assert.deepEqual(listed.map((s) => s.name).sort(), ['version-v0', 'version-v1', 'version-v2', 'version-v3']);
});

test('rollbacks in place: v1, v3, v0, v2, each through the same connection string', async () => {
  for (const v of ['v1', 'v3', 'v0', 'v2']) {
    await rollback(v);
    assert.equal(schema(activeUri), SCHEMAS[v], `after restoring ${v}`);
    if (v !== 'v0') assert.equal(psql(activeUri, 'select name from contacts'), 'Ada');
  }
});

test('the agent keeps working after rollbacks, and snapshots the new state', async () => {
  psql(activeUri, "insert into contacts (name, role) values ('Grace', 'admiral')");
  await snapshotVersion('v4');
  await rollback('v1');
  assert.equal(psql(activeUri, 'select count(*) from contacts'), '1');
  await rollback('v4');
  assert.equal(psql(activeUri, 'select string_agg(name, \',\' order by id) from contacts'), 'Ada,Grace');
});

test('preview a version with finalize_restore: false; the active branch is untouched', async () => {
  const { data } = await api.restoreSnapshot({ projectId, snapshotId: versions.v1 },
                                             { name: 'preview-v1', finalize_restore: false });
  await waitForOperations(data.operations);
  const preview = data.branch;
  assert.equal(preview.name, 'preview-v1');
  assert.equal(preview.restored_from, versions.v1);
  // A preview gets a compute of its own, so its own connection string.
  const ep = (await api.createProjectEndpoint(projectId, { endpoint: { branch_id: preview.id, type: 'read_write' } })).data;
  await waitForOperations(ep.operations);
  const previewUri = await connectionUri(preview.id);
  assert.notEqual(previewUri, activeUri);
  assert.equal(schema(previewUri), SCHEMAS.v1);
  assert.equal(schema(activeUri), SCHEMAS.v2);
  assert.equal(psql(activeUri, 'select count(*) from contacts'), '2');

  // Deleting the preview and the snapshots leaves the active branch as it is.
  await api.deleteProjectBranch({ projectId, branchId: preview.id });
  for (const id of Object.values(versions)) await waitForOperations((await api.deleteSnapshot(projectId, id)).data.operations);
  assert.deepEqual((await api.listSnapshots(projectId)).data.snapshots, []);
  assert.equal(schema(activeUri), SCHEMAS.v2);
  assert.deepEqual((await api.listProjectBranches({ projectId })).data.branches.map((b) => b.name), ['main']);
});
