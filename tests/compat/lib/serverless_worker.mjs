// A child process that runs code with @neondatabase/serverless for serverless.test.mjs, set up as
// the README tells a user to: NODE_EXTRA_CA_CERTS=<data-dir>/tls/ca.crt in its environment (Node
// reads it only at start, hence a process of its own) and the two endpoint settings in neonConfig.
// It reads one JSON line per job ({id, source, args}) and answers one JSON line ({id, value} or
// {id, error}); `source` is an async function's text, called with the driver and `args`.
import { createInterface } from 'node:readline';
import * as serverless from '@neondatabase/serverless';
import ws from 'ws';

const { neonConfig } = serverless;
neonConfig.fetchEndpoint = (host, port) => 'https://' + host + ':' + port + '/sql';
neonConfig.wsProxy = (host, port) => host + ':' + port + '/v2';
neonConfig.webSocketConstructor = ws;

// Values JSON cannot carry, tagged so the test can compare them.
const tagged = (_key, v) => {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v && v.type === 'Buffer' && Array.isArray(v.data)) return { $bytes: Buffer.from(v.data).toString('hex') };
  return v;
};
const dates = (v) => {
  if (v instanceof Date) return { $date: v.toISOString() };
  if (Array.isArray(v)) return v.map(dates);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, dates(x)]));
  }
  return v;
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { id, source, args } = JSON.parse(line);
  let answer;
  try {
    const fn = (0, eval)(`(${source})`);
    answer = { id, value: dates(await fn(serverless, args)) };
  } catch (e) {
    answer = { id, error: { name: e.constructor?.name, message: e.message, code: e.code ?? null,
                            constraint: e.constraint ?? null, severity: e.severity ?? null } };
  }
  process.stdout.write(JSON.stringify(answer, tagged) + '\n');
}
