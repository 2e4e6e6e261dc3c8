import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import t, { type Test } from 'tap';
import { testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort } from '../helpers/redis-server.ts';

leakCheck(t);

const CLI = path.resolve(import.meta.dirname, '../../scripts/dockhand.js');

/** Runs `dockhand <args>` until `until` appears on stdout or it exits; then stops it. */
async function dockhand(t: Test, args: string[], env: Record<string, string>, until?: RegExp) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  let stopping = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    // Once: a second signal means "exit now" (exit code 1).
    if (!stopping && until?.test(stdout)) {
      stopping = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

t.test('beyond loopback without API_KEYS the server refuses to start: one line, exit 2', async (t) => {
  const env = testEnv(t, { HOST: '0.0.0.0', LOG_LEVEL: 'info', PORT: String(await freePort()) });
  const { code, stdout, stderr } = await dockhand(t, ['gateway'], env, /dockhand started/);
  t.equal(code, 2, stdout);
  t.equal(
    stderr,
    'dockhand: HOST 0.0.0.0 is not a loopback address and API_KEYS is not set: set API_KEYS, listen on 127.0.0.1, or set ALLOW_UNAUTHENTICATED=yes to serve every route without a key.\n',
  );
});

t.test('whenever authentication is off, start-up says so in a warning line', async (t) => {
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ['loopback, no keys', {}, true],
    ['0.0.0.0 with ALLOW_UNAUTHENTICATED=yes', { HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'yes' }, true],
    ['with API_KEYS', { HOST: '0.0.0.0', API_KEYS: 'k' }, false],
  ];
  for (const [name, extra, warned] of cases) {
    const env = testEnv(t, { LOG_LEVEL: 'info', PORT: String(await freePort()), ...extra });
    const { code, stdout } = await dockhand(t, ['gateway'], env, /dockhand started/);
    t.equal(code, 0, `${name}: started and stopped cleanly (${code})`);
    const warnings = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((l) => l.level === 40 && /Authentication is off/.test(l.msg));
    t.equal(warnings.length, warned ? 1 : 0, `${name}: ${warned ? 'one warning' : 'no warning'}`);
    if (warned) t.match(warnings[0]?.msg, /API_KEYS is not set\): every route is open/);
  }
});
