// Runs functions in serverless_worker.mjs, a Node.js process that trusts argond's certificate
// authority the way a user's app does (NODE_EXTRA_CA_CERTS), and returns what they returned or
// throws what they threw (as an Error with the driver's name, message and code).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export function startDriver(dataDir) {
  const child = spawn(process.execPath, [new URL('./serverless_worker.mjs', import.meta.url).pathname], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dataDir, 'tls', 'ca.crt') },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = new Map();
  let next = 0;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const answer = JSON.parse(line);
    const w = waiting.get(answer.id);
    waiting.delete(answer.id);
    if (answer.error) {
      const e = new Error(answer.error.message);
      Object.assign(e, { driverError: answer.error.name, code: answer.error.code,
                         constraint: answer.error.constraint, severity: answer.error.severity });
      w.reject(e);
    } else {
      w.resolve(answer.value);
    }
  });
  return {
    // run(async (driver, args) => ..., args): the function runs in the worker; closures do not.
    run(fn, args = {}) {
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.stdin.write(JSON.stringify({ id, source: fn.toString(), args }) + '\n');
      });
    },
    stop() { child.stdin.end(); child.kill(); },
  };
}
