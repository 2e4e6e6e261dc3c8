import { spawn } from 'node:child_process';
import { request } from 'undici';

const port = 3917,
  key = 'k1';
const env = {
  ...process.env,
  PORT: String(port),
  API_KEYS: key,
  QUEUE_PREFIX: 'qb' + Date.now(),
  DATA_DIR: '/tmp/qbdata' + Date.now(),
  LOG_LEVEL: 'info',
};
const srv = spawn(
  'node',
  [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), 'scripts/dockhand.js', 'all'],
  { env, cwd: process.env.ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
);
const base = `http://127.0.0.1:${port}`;
const h = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
for (let i = 0; i < 200; i++) {
  try {
    const r = await request(base + '/ready');
    if (r.statusCode === 200) {
      await r.body.text();
      break;
    }
    await r.body.text();
  } catch {}
  await new Promise((r) => setTimeout(r, 100 + i * 10));
}
const r = await request(base + '/functions/noop', {
  method: 'PUT',
  headers: h,
  body: JSON.stringify({
    runtime: 'node20',
    handler: 'index.handler',
    memoryMb: 128,
    timeoutMs: 3000,
    code: { files: { 'index.js': 'exports.handler = async () => ({ ok: true })' } },
  }),
});
console.log('deploy', r.statusCode, (await r.body.text()).slice(0, 80));
const call = async () => {
  const s = performance.now();
  const r = await request(base + '/functions/noop/invoke', { method: 'POST', headers: h, body: '{}' });
  await r.body.text();
  if (r.statusCode !== 200) codes[r.statusCode] = (codes[r.statusCode] ?? 0) + 1;
  return performance.now() - s;
};
const codes = {};
for (let i = 0; i < 50; i++) await call();
const lat = [];
for (let i = 0; i < Number(process.env.N ?? 500); i++) lat.push(await call());
lat.sort((a, b) => a - b);
console.log(
  'seq p50',
  lat[Math.floor(lat.length / 2)].toFixed(2),
  'p99',
  lat[Math.floor(lat.length * 0.99)].toFixed(2),
);
const t0 = performance.now();
let n = 0;
const total = 2000;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (n++ < total) await call();
  }),
);
console.log(
  'c32 per s',
  (total / ((performance.now() - t0) / 1000)).toFixed(0),
  'non-200',
  JSON.stringify(codes),
);
srv.kill('SIGTERM');
await new Promise((r) => srv.once('exit', r));
