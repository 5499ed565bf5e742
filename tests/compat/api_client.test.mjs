// Neon's TypeScript SDK (@neondatabase/api-client), pointed at argond by `baseURL` only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient, EndpointState } from '@neondatabase/api-client';
import { startArgond, waitOperations } from './lib/argond.mjs';

let argond;
let api;
let projectId;
let mainBranch;
let ownerPassword;

const waitProject = (what) =>
  waitOperations(async () => (await api.listProjectOperations({ projectId })).data.operations, what);

before(async () => {
  argond = await startArgond();
  api = createApiClient({ apiKey: argond.key, baseURL: argond.apiHost });
});

after(async () => {
  if (argond) await argond.stop();
});

test('a wrong key is refused with a Neon error body', async () => {
  const bad = createApiClient({ apiKey: 'not-the-key', baseURL: argond.apiHost });
  await assert.rejects(bad.listProjects({}), (err) => {
    assert.equal(err.response.status, 401);
    assert.equal(typeof err.response.data.message, 'string');
    return true;
  });
});

test('createProject returns the project, its default branch and a connection string', async () => {
  const { status, data } = await api.createProject({ project: { name: 'sdk-project', pg_version: 15 } });
  assert.equal(status, 201);
  assert.equal(data.project.name, 'sdk-project');
  assert.equal(data.branch.name, 'main');
  assert.equal(data.branch.default, true);
  assert.equal('parent_id' in data.branch, false, 'a root branch omits parent_id');
  assert.match(data.branch.id, /^br-[a-z]+-[a-z]+-\d+$/);
  assert.equal(data.endpoints.length, 1);
  assert.match(data.endpoints[0].id, /^ep-[a-z]+-[a-z]+-\d+$/);
  assert.equal(data.roles[0].name, 'neondb_owner');
  assert.equal(data.databases[0].name, 'neondb');
  const uri = new URL(data.connection_uris[0].connection_uri);
  assert.equal(uri.username, 'neondb_owner');
  assert.ok(uri.hostname.startsWith(data.endpoints[0].id));
  assert.ok(data.operations.length > 0);
  projectId = data.project.id;
  mainBranch = data.branch.id;
  ownerPassword = decodeURIComponent(uri.password);
  await waitProject('project creation');
});

test('listProjects and getProject see the project', async () => {
  const list = (await api.listProjects({})).data;
  assert.ok(list.projects.some((p) => p.id === projectId));
  const got = (await api.getProject(projectId)).data.project;
  assert.equal(got.name, 'sdk-project');
  assert.equal(got.pg_version, 15);
});

test('roles listed by the API are the roles inside the branch, and reveal_password returns the real one', async () => {
  const roles = (await api.listProjectBranchRoles(projectId, mainBranch)).data.roles.map((r) => r.name);
  assert.deepEqual(roles, ['neondb_owner']);
  const inside = argond.sql(mainBranch, "select rolname from pg_roles where rolname = 'neondb_owner'");
  assert.equal(inside, 'neondb_owner');
  const { data } = await api.getProjectBranchRolePassword(projectId, mainBranch, 'neondb_owner');
  assert.equal(data.password, ownerPassword);
  const uri = (await api.getConnectionUri({ projectId, database_name: 'neondb', role_name: 'neondb_owner' })).data.uri;
  assert.equal(decodeURIComponent(new URL(uri).password), ownerPassword);
});

test('branches: create with an endpoint, list, rename, delete', async () => {
  const created = (await api.createProjectBranch(projectId, {
    branch: { name: 'feature' },
    endpoints: [{ type: 'read_write' }],
  })).data;
  const featureId = created.branch.id;
  assert.equal(created.branch.parent_id, mainBranch);
  assert.equal(created.endpoints.length, 1);
  await waitProject('branch creation');
  assert.equal(argond.sql(featureId, 'select count(*) from pg_database where datname = \'neondb\''), '1');

  let branches = (await api.listProjectBranches({ projectId })).data.branches;
  assert.deepEqual(branches.map((b) => b.name).sort(), ['feature', 'main']);

  const renamed = (await api.updateProjectBranch(projectId, featureId, { branch: { name: 'feature-2' } })).data;
  assert.equal(renamed.branch.name, 'feature-2');
  assert.equal(renamed.branch.id, featureId);

  await assert.rejects(api.deleteProjectBranch({ projectId, branchId: mainBranch }), (err) => {
    assert.equal(err.response.status, 409);
    return true;
  }, 'the default branch cannot be deleted');

  const deleted = (await api.deleteProjectBranch({ projectId, branchId: featureId })).data;
  assert.equal(deleted.branch.id, featureId);
  await waitProject('branch deletion');
  branches = (await api.listProjectBranches({ projectId })).data.branches;
  assert.deepEqual(branches.map((b) => b.name), ['main']);
  await assert.rejects(api.getProjectBranch(projectId, featureId), (err) => err.response.status === 404);
  assert.equal(argond.computeRunning(featureId), false);
});

test('endpoints: list, suspend and start follow the real compute', async () => {
  const endpoints = (await api.listProjectEndpoints(projectId)).data.endpoints;
  assert.equal(endpoints.length, 1);
  const ep = endpoints[0];
  assert.equal(ep.branch_id, mainBranch);
  assert.equal(ep.type, 'read_write');
  assert.equal(ep.current_state, EndpointState.Active);
  assert.equal(argond.computeRunning(mainBranch), true);

  const suspended = (await api.suspendProjectEndpoint(projectId, ep.id)).data;
  assert.ok(suspended.operations.some((o) => o.action === 'suspend_compute'));
  await waitProject('suspend');
  let now = (await api.getProjectEndpoint(projectId, ep.id)).data.endpoint;
  assert.equal(now.current_state, EndpointState.Idle);
  assert.ok(now.suspended_at);
  assert.equal(argond.computeRunning(mainBranch), false);

  const started = (await api.startProjectEndpoint(projectId, ep.id)).data;
  assert.ok(started.operations.some((o) => o.action === 'start_compute'));
  await waitProject('start');
  now = (await api.getProjectEndpoint(projectId, ep.id)).data.endpoint;
  assert.equal(now.current_state, EndpointState.Active);
  assert.ok(now.started_at);
  assert.equal(argond.sql(mainBranch, 'select 1'), '1');
});

test('operations can be listed and fetched one by one', async () => {
  const ops = (await api.listProjectOperations({ projectId })).data.operations;
  assert.ok(ops.length >= 5);
  const one = (await api.getProjectOperation(projectId, ops[0].id)).data.operation;
  assert.equal(one.id, ops[0].id);
  assert.equal(one.status, 'finished');
});

test('deleteProject removes the project and stops its compute', async () => {
  await api.deleteProject(projectId);
  await assert.rejects(api.getProject(projectId), (err) => err.response.status === 404);
  const deadline = Date.now() + 60_000;
  while (argond.computeRunning(mainBranch) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(argond.computeRunning(mainBranch), false);
});
