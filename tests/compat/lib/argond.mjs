// Starts a private argond (own data dir, ephemeral API port, fresh key) for one test file and
// gives the tests what Neon's clients need: the API host and key. Also reads the compute's own
// catalog over its private socket, so tests compare what the API reports with what Postgres holds.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, chmodSync, readFileSync, rmSync, openSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApiClient } from '@neondatabase/api-client';

const ARGOND = process.env.ARGOND ?? new URL('../../../build/bin/argond', import.meta.url).pathname;

export async function startArgond() {
  const root = mkdtempSync(join(tmpdir(), 'argon-compat-'));
  chmodSync(root, 0o711); // the unprivileged postgres user must traverse into the data dir
  const dataDir = join(root, 'data');
  const logPath = join(root, 'argond.log');
  const key = randomBytes(24).toString('hex');
  const log = openSync(logPath, 'a');
  const child = spawn(
    ARGOND,
    ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0',
     '--unsafe-no-fsync', '--log-level', 'debug'],
    { env: { ...process.env, ARGON_API_KEY: key }, stdio: ['ignore', log, log] });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 120_000;
  let apiHost = null;
  while (!apiHost) {
    if (exited) throw new Error(`argond exited early (${JSON.stringify(exited)}):\n${readFileSync(logPath, 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`argond did not announce its API URL:\n${readFileSync(logPath, 'utf8')}`);
    const m = readFileSync(logPath, 'utf8').match(/^ARGOND_API_URL=(\S+)$/m);
    if (m) apiHost = m[1];
    else await sleep(50);
  }

  // A branch's compute listens in run/<id>, or in run/<id>~ when a reset swapped in a compute
  // started there.
  const socketDir = (branchId) => {
    const home = join(dataDir, 'run', branchId);
    const other = join(dataDir, 'run', `${branchId}~`);
    return !existsSync(join(home, '.s.PGSQL.5432')) && existsSync(join(other, '.s.PGSQL.5432'))
      ? other : home;
  };

  return {
    apiHost,
    key,
    dataDir,
    logTail: () => readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n'),
    // Runs SQL as the internal admin role inside the branch's running compute.
    sql(branchId, query, db = 'postgres') {
      return execFileSync('psql', ['-h', socketDir(branchId), '-p', '5432', '-U', 'argon_admin',
                                   '-d', db, '-XAtc', query], { encoding: 'utf8' }).trim();
    },
    computeRunning: (branchId) => existsSync(join(socketDir(branchId), '.s.PGSQL.5432')),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const until = Date.now() + 60_000;
        while (!exited && Date.now() < until) await sleep(50);
        if (!exited) child.kill('SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

// Runs SQL through a connection string exactly as a user would (`psql "<uri>" -c ...`): TLS,
// SCRAM and the endpoint chosen by the host name, all through argond's proxy.
export function psql(uri, query) {
  const r = spawnSync('psql', [uri, '-XAtqc', query], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`psql exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

// Polls `list` (returning operations) until none is still queued or running; fails on a failed one.
export async function waitOperations(list, what = 'operations') {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ops = await list();
    const failed = ops.filter((o) => ['failed', 'error'].includes(o.status));
    if (failed.length) throw new Error(`${what} failed: ${JSON.stringify(failed)}`);
    if (ops.every((o) => ['finished', 'skipped', 'cancelled'].includes(o.status))) return ops;
    if (Date.now() > deadline) throw new Error(`${what} still pending: ${JSON.stringify(ops)}`);
    await sleep(100);
  }
}

// Neon's TypeScript SDK pointed at argond, with failures that say which call failed and why.
export function neonApi(argond) {
  const api = createApiClient({ apiKey: argond.key, baseURL: argond.apiHost });
  api.instance.interceptors.response.use(null, (err) => {
    err.message += ` (${err.config?.method} ${err.config?.url}: ${JSON.stringify(err.response?.data)})`;
    throw err;
  });
  return api;
}
