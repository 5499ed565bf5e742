// Neon's serverless driver (@neondatabase/serverless, pinned) against argond, set up as the README
// says: the app trusts argond's certificate authority (NODE_EXTRA_CA_CERTS) and points
// neonConfig.fetchEndpoint and wsProxy at the host and port of the connection string Argon
// returned. Nothing else differs from an app written for Neon. The driver runs in a worker process
// (lib/serverless.mjs), since Node reads NODE_EXTRA_CA_CERTS only at start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { neonApi, startArgond, waitOperations } from './lib/argond.mjs';
import { startDriver } from './lib/serverless.mjs';

let argond;
let api;
let driver;
let projectId;
let branchId;
let endpointId;
let uri;

// Polls the operations a call returned until each has ended (the guide's waitForOperation).
const waitForOperations = (ops) => waitOperations(() => Promise.all(ops.map(
  async ({ id }) => (await api.getProjectOperation(projectId, id)).data.operation)));

// One statement through neon() over HTTP, its rows as objects.
const query = (text, params = [], url = uri) =>
  driver.run(async ({ neon }, { url, text, params }) => neon(url).query(text, params), { url, text, params });

before(async () => {
  argond = await startArgond();
  api = neonApi(argond);
  const { data } = await api.createProject({ project: { name: 'serverless' } });
  projectId = data.project.id;
  branchId = data.branch.id;
  endpointId = data.endpoints[0].id;
  uri = data.connection_uris[0].connection_uri;
  await waitOperations(async () => (await api.listProjectOperations({ projectId })).data.operations, 'project');
  driver = startDriver(argond.dataDir);
});

after(async () => {
  driver?.stop();
  if (argond) await argond.stop();
});

test('tagged-template queries with parameters, and the types the driver parses', async () => {
  const rows = await driver.run(async ({ neon }, { uri }) => {
    const sql = neon(uri);
    const n = 41;
    return sql`select ${n}::int + 1 as answer, ${"it's"}::text as quoted,
                      9007199254740993::bigint as big, 12345.678901234567890::numeric as num,
                      '2024-01-02 03:04:05.678+02'::timestamptz as at, '{"a":[1,2,{"b":null}]}'::jsonb as doc,
                      '\\xdeadbeef'::bytea as bin, ${Buffer.from('ABC')} as bound_bin,
                      array[1,2,3] as ints, array['x', null, 'z'] as texts, null::int as nothing`;
  }, { uri });
  assert.deepEqual(rows, [{
    answer: 42, quoted: "it's", big: '9007199254740993', num: '12345.678901234567890',
    at: { $date: '2024-01-02T01:04:05.678Z' }, doc: { a: [1, 2, { b: null }] },
    bin: { $bytes: 'deadbeef' }, bound_bin: { $bytes: '414243' },
    ints: [1, 2, 3], texts: ['x', null, 'z'], nothing: null,
  }]);
});

test('arrayMode and fullResults', async () => {
  const r = await driver.run(async ({ neon }, { uri }) => {
    const asArrays = neon(uri, { arrayMode: true });
    const full = neon(uri, { fullResults: true });
    const f = await full`select 1 as a, 'two' as b union all select 3, 'four'`;
    return { arrays: await asArrays`select 1 as a, 'two' as b`, full: { rows: f.rows, command: f.command,
             rowCount: f.rowCount, fields: f.fields.map((x) => [x.name, x.dataTypeID]) } };
  }, { uri });
  assert.deepEqual(r.arrays, [[1, 'two']]);
  assert.deepEqual(r.full, { rows: [{ a: 1, b: 'two' }, { a: 3, b: 'four' }], command: 'SELECT', rowCount: 2,
                             fields: [['a', 23], ['b', 25]] });
});

test('sql.transaction commits together, and rolls back entirely when one statement fails', async () => {
  await query('create table accounts (id int primary key, balance int not null)');
  const committed = await driver.run(async ({ neon }, { uri }) => {
    const sql = neon(uri);
    return sql.transaction([
      sql`insert into accounts values (1, 100), (2, 0)`,
      sql`update accounts set balance = balance - 30 where id = 1`,
      sql`update accounts set balance = balance + 30 where id = 2`,
      sql`select id, balance from accounts order by id`,
    ], { isolationLevel: 'Serializable' });
  }, { uri });
  assert.deepEqual(committed[3], [{ id: 1, balance: 70 }, { id: 2, balance: 30 }]);

  await assert.rejects(driver.run(async ({ neon }, { uri }) => {
    const sql = neon(uri);
    return sql.transaction([
      sql`update accounts set balance = 0`,
      sql`insert into accounts values (3, 1)`,
      sql`insert into accounts values (1, 1)`,  // a duplicate key: the whole batch goes
    ]);
  }, { uri }), (e) => e.driverError === 'NeonDbError' && e.code === '23505');
  assert.deepEqual(await query('select id, balance from accounts order by id'),
                   [{ id: 1, balance: 70 }, { id: 2, balance: 30 }]);

  // A read-only batch refuses to write.
  await assert.rejects(driver.run(async ({ neon }, { uri }) => {
    const sql = neon(uri);
    return sql.transaction([sql`delete from accounts`], { readOnly: true });
  }, { uri }), (e) => e.code === '25006');
});

test('a unique violation is a NeonDbError with code 23505 and the constraint', async () => {
  await query('create table people (email text unique)');
  await query('insert into people values ($1)', ['ada@example.com']);
  await assert.rejects(query('insert into people values ($1)', ['ada@example.com']), (e) => {
    assert.equal(e.driverError, 'NeonDbError');
    assert.equal(e.code, '23505');
    assert.equal(e.constraint, 'people_email_key');
    assert.equal(e.severity, 'ERROR');
    return true;
  });
});

test('a wrong password and an unknown endpoint fail with clear errors', async () => {
  const wrong = uri.replace(/:([^:@/]+)@/, ':not-the-password@');
  await assert.rejects(query('select 1', [], wrong),
                       (e) => e.driverError === 'NeonDbError' && /password authentication failed for user 'neondb_owner'/.test(e.message));
  const unknown = uri.replace(endpointId, 'ep-no-such-endpoint-12345678');
  await assert.rejects(query('select 1', [], unknown),
                       (e) => e.driverError === 'NeonDbError' && /ep-no-such-endpoint-12345678/.test(e.message));
});

test('a suspended endpoint wakes for an HTTP query', async () => {
  const { data } = await api.suspendProjectEndpoint(projectId, endpointId);
  await waitForOperations(data.operations);
  assert.equal(argond.computeRunning(branchId), false);
  assert.deepEqual(await query('select 1 as awake'), [{ awake: 1 }]);
  assert.equal(argond.computeRunning(branchId), true);
});

test('a finalized restore while HTTP queries run: before it old state or a retryable error, after it the restored state', async () => {
  await query('create table marks (v text)');
  await query("insert into marks values ('snapshot')");
  const snap = (await api.createSnapshot({ projectId, branchId, name: 'marks' })).data;
  await waitForOperations(snap.operations);
  await query("update marks set v = 'after snapshot'");

  const running = driver.run(async ({ neon }, { uri }) => {
    const sql = neon(uri);
    const seen = [];
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      const start = Date.now();
      try {
        const [{ v }] = await sql`select v from marks`;
        seen.push({ start, end: Date.now(), v });
      } catch (e) {
        seen.push({ start, end: Date.now(), error: e.message, code: e.code ?? null });
      }
    }
    return seen;
  }, { uri });
  await sleep(1000);
  const r = (await api.restoreSnapshot({ projectId, snapshotId: snap.snapshot.id },
                                       { target_branch_id: branchId, finalize_restore: true })).data;
  await waitForOperations(r.operations);
  const finished = Date.now();
  const seen = await running;

  const before = seen.filter((s) => s.end < finished);
  const after = seen.filter((s) => s.start > finished);
  assert.ok(before.some((s) => s.v === 'after snapshot'), 'queries ran before the restore');
  assert.ok(after.length > 0, 'queries ran after the restore');
  for (const s of after) assert.deepEqual(s.v, 'snapshot', `a query after the restore saw ${JSON.stringify(s)}`);
  for (const s of seen) {
    if (s.error) {
      assert.ok(s.code === '57P01' || /HTTP status 503/.test(s.error), `not a retryable error: ${JSON.stringify(s)}`);
    }
  }
  branchId = r.branch.id;
  // The connection string did not change.
  const again = (await api.getConnectionUri({ projectId, branch_id: branchId, database_name: 'neondb',
                                              role_name: 'neondb_owner' })).data.uri;
  assert.equal(again, uri);
});

test('Pool over the WebSocket tunnel runs a multi-statement transaction', async () => {
  const r = await driver.run(async ({ Pool }, { uri }) => {
    const pool = new Pool({ connectionString: uri });
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query('create table ledger (id serial primary key, amount numeric not null)');
      await client.query('insert into ledger (amount) values ($1), ($2)', ['10.50', '-2.25']);
      const inside = (await client.query('select sum(amount) as total from ledger')).rows;
      await client.query('commit');
      await client.query('begin');
      await client.query('insert into ledger (amount) values (1000)');
      await client.query('rollback');
      const after = (await pool.query('select sum(amount) as total, count(*)::int as n from ledger')).rows;
      return { inside, after };
    } finally {
      client.release();
      await pool.end();
    }
  }, { uri });
  assert.deepEqual(r, { inside: [{ total: '8.25' }], after: [{ total: '8.25', n: 2 }] });
  // What the tunnel committed, HTTP sees.
  assert.deepEqual(await query('select count(*)::int as n from ledger'), [{ n: 2 }]);
});

test('over the WebSocket, a wrong password is refused and a unique violation has its code', async () => {
  const wrong = uri.replace(/:([^:@/]+)@/, ':not-the-password@');
  await assert.rejects(driver.run(async ({ Pool }, { url }) => {
    const pool = new Pool({ connectionString: url });
    try { return await pool.query('select 1'); } finally { await pool.end(); }
  }, { url: wrong }), (e) => /password authentication failed for user "neondb_owner"/.test(e.message) && e.code === '28P01');
  await assert.rejects(driver.run(async ({ Client }, { uri }) => {
    const client = new Client(uri);
    await client.connect();
    try { return await client.query("insert into people values ('ada@example.com')"); } finally { await client.end(); }
  }, { uri }), (e) => e.code === '23505');
});

test("the seed demo's pattern: versions v0..v3 and four in-place restores, all SQL through neon() over HTTP", async () => {
  const { data } = await api.createProject({ project: { name: 'demo' } });
  const demo = data.project.id;
  let active = data.branch.id;
  const demoUri = data.connection_uris[0].connection_uri;
  await waitOperations(async () => (await api.listProjectOperations({ projectId: demo })).data.operations, 'demo');
  const waitDemo = (ops) => waitOperations(() => Promise.all(ops.map(
    async ({ id }) => (await api.getProjectOperation(demo, id)).data.operation)));
  const http = (text) => query(text, [], demoUri);
  const columns = async () => (await http(`select coalesce(string_agg(column_name, ',' order by ordinal_position), '') as c
                                            from information_schema.columns where table_name = 'contacts'`))[0].c;
  const snapshots = {};
  const snapshot = async (v) => {
    const s = (await api.createSnapshot({ projectId: demo, branchId: active, name: v })).data;
    await waitDemo(s.operations);
    snapshots[v] = s.snapshot.id;
  };

  await snapshot('v0');
  await http('create table contacts (id uuid primary key default gen_random_uuid(), name text not null, email text)');
  await http("insert into contacts (name, email) values ('Ada', 'ada@example.com')");
  await snapshot('v1');
  await http('alter table contacts add column role text, add column company text');
  await snapshot('v2');
  await http("alter table contacts add column tags text[] default '{}'");
  await http("update contacts set tags = '{founder,math}'");
  await snapshot('v3');

  const expected = { v0: '', v1: 'id,name,email', v2: 'id,name,email,role,company',
                     v3: 'id,name,email,role,company,tags' };
  for (const v of ['v1', 'v3', 'v0', 'v2']) {
    const r = (await api.restoreSnapshot({ projectId: demo, snapshotId: snapshots[v] },
                                         { target_branch_id: active, finalize_restore: true })).data;
    await waitDemo(r.operations);
    active = r.branch.id;
    assert.equal(await columns(), expected[v], `schema after restoring ${v}`);
    if (v !== 'v0') assert.deepEqual(await http('select name from contacts'), [{ name: 'Ada' }]);
    if (v === 'v3') assert.deepEqual(await http('select tags from contacts'), [{ tags: ['founder', 'math'] }]);
    const again = (await api.getConnectionUri({ projectId: demo, branch_id: active, database_name: 'neondb',
                                                role_name: 'neondb_owner' })).data.uri;
    assert.equal(again, demoUri, 'the connection string never changes');
  }
});

test("api.<proxy-host>, where Neon's default fetchEndpoint sends queries, is served too", async () => {
  const rows = await driver.run(async ({ neon, neonConfig }, { uri }) => {
    const own = neonConfig.fetchEndpoint;
    // The default's host (the first label replaced by `api`), with the test's port.
    neonConfig.fetchEndpoint = (host, port) => 'https://' + host.replace(/^[^.]+/, 'api') + ':' + port + '/sql';
    try { return await neon(uri)`select 'via api' as host`; } finally { neonConfig.fetchEndpoint = own; }
  }, { uri });
  assert.deepEqual(rows, [{ host: 'via api' }]);
});
