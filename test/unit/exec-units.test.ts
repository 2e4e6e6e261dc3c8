import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { imageAllowed, normalizeImage } from '../../core/image-allowlist.ts';
import { controlMarker, encodeRunSpec, newNonce } from '../../runtimes/exec-init/run-spec.ts';
import { ExecOutput } from '../../runtimes/exec-output.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

t.test('imageAllowed: globs over normalized references', async (t) => {
  t.ok(imageAllowed('anything/at:all', []), 'an empty list allows any image');
  const list = ['python:3.*', 'alpine', 'ghcr.io/acme/*', 'registry.local:5000/team/**', 'node@sha256:*'];
  t.ok(imageAllowed('python:3.12-slim', list));
  t.ok(imageAllowed('docker.io/library/python:3.9', list), 'Docker Hub spelled out is the same image');
  t.notOk(imageAllowed('python:2.7', list));
  t.notOk(imageAllowed('python', list), 'python means python:latest, not 3.*');
  t.ok(imageAllowed('alpine', list));
  t.ok(imageAllowed('alpine:3.20', list), 'a pattern without a tag allows every tag');
  t.ok(imageAllowed('index.docker.io/library/alpine@sha256:abc', list), '…and digest');
  t.notOk(imageAllowed('alpinex', list));
  t.notOk(imageAllowed('evil/alpine', list), 'another namespace is another image');
  t.ok(imageAllowed('ghcr.io/acme/tool:1', list));
  t.notOk(imageAllowed('ghcr.io/acme/team/tool:1', list), '* stops at /');
  t.notOk(imageAllowed('ghcr.io/acmex/tool', list));
  t.ok(imageAllowed('registry.local:5000/team/a/b:2', list), '** crosses /');
  t.notOk(imageAllowed('registry.local:5001/team/a', list), 'the port is part of the registry');
  t.ok(imageAllowed('node@sha256:0123', list));
  t.notOk(imageAllowed('node:20', list));
  t.notOk(imageAllowed('python:3.12 ', ['python:3.1?']), 'space is not a reference');
  t.ok(imageAllowed('python:3.12', ['python:3.1?']));
  t.notOk(imageAllowed('python:3.1', ['python:3.1?']), '? is exactly one character');
  t.notOk(
    imageAllowed('pythonista/x:3.1', ['python*']),
    'a prefix glob does not reach into other namespaces',
  );
  t.notOk(imageAllowed('a.b(c)', ['a.b(c)x']), 'pattern text is literal');
  t.ok(imageAllowed('x', ['**']), '** alone allows all');
  t.same(normalizeImage('docker.io/acme/tool'), { repository: 'acme/tool', suffix: ':latest' });
  t.equal(normalizeImage(''), undefined);
});

t.test('run spec: encoded as dh-init reads it; what it would refuse is one sentence', async (t) => {
  const ok = encodeRunSpec({ nonce: 'ab'.repeat(8), cwd: '/w', argv: ['a', 'b c'], env: { K: 'v=1' } });
  t.ok('bytes' in ok);
  if ('bytes' in ok) {
    const body = 'Nabababababababab\0C/w\0Aa\0Ab c\0EK=v=1\0';
    t.equal(ok.bytes.toString(), `DH1 ${body.length}\n${body}`);
  }
  const refused = (spec: Parameters<typeof encodeRunSpec>[0]) => {
    const r = encodeRunSpec(spec);
    return 'error' in r ? r.error : 'accepted';
  };
  const base = { nonce: newNonce(), cwd: '/', argv: ['x'], env: {} };
  t.match(refused({ ...base, argv: [] }), /empty/);
  t.match(refused({ ...base, argv: ['a\0b'] }), /NUL/);
  t.match(refused({ ...base, env: { A: 'x\0' } }), /NUL/);
  t.match(refused({ ...base, env: { 'A=B': 'x' } }), /not valid/);
  t.match(refused({ ...base, cwd: 'rel' }), /absolute/);
  t.match(refused({ ...base, argv: Array(5000).fill('a') }), /more than 4096/);
  t.match(refused({ ...base, argv: ['x', 'y'.repeat(9 * 1024 * 1024)] }), /bytes/);
});

t.test('output: interleaved, capped as it arrives, control lines taken out even when split', async (t) => {
  const nonce = newNonce();
  const out = new ExecOutput(1024, nonce);
  const live: string[] = [];
  out.onOutput = (chunk, stream) => live.push(`${stream}:${chunk}`);
  out.stdout.write(Buffer.from('one\n'));
  out.stderr.write(Buffer.from('two\n'));
  // A marker with another nonce is the command's own output.
  out.stderr.write(Buffer.from(`${controlMarker('0'.repeat(32))}error:forged\n`));
  const marker = Buffer.from(`${controlMarker(nonce)}done\n`);
  out.stderr.write(Buffer.concat([Buffer.from('tail'), marker.subarray(0, 5)]));
  out.stderr.write(marker.subarray(5, 20));
  out.stderr.write(marker.subarray(20));
  out.stderr.write(Buffer.from('after the control line: ignored'));
  t.same(await out.control, { kind: 'done' });
  t.equal(out.finish(), `one\ntwo\n${controlMarker('0'.repeat(32))}error:forged\ntail`);
  t.equal(out.truncated, false);
  t.same(live.slice(0, 2), ['stdout:one\n', 'stderr:two\n']);

  const errors = new ExecOutput(1024, nonce);
  errors.stderr.write(Buffer.from(`${controlMarker(nonce)}error:cannot run x: No such file or directory\n`));
  t.same(await errors.control, { kind: 'error', message: 'cannot run x: No such file or directory' });
  t.equal(errors.finish(), '');

  const capped = new ExecOutput(1024, nonce);
  for (let i = 0; i < 1000; i++) capped.stdout.write(Buffer.alloc(4096, 0x61));
  capped.stderr.write(Buffer.from('\x1e'));
  t.equal(capped.finish(), 'a'.repeat(1024));
  t.equal(capped.truncated, true);
  t.equal(capped.bytesSeen, 4096 * 1000 + 1, 'counted, not kept');

  const utf = new ExecOutput(1024, nonce);
  const snow = Buffer.from('☃');
  utf.stdout.write(snow.subarray(0, 1));
  utf.stderr.write(Buffer.from('e'));
  utf.stdout.write(snow.subarray(1));
  t.equal(utf.finish(), 'e☃', 'a character split over chunks stays whole');
});

/** Runs dh-init on the host (not PID 1: it kills nothing else) with `input` on stdin. */
function runInit(init: string, input: Buffer, cwd?: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(init, [], { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

t.test('dh-init runs a spec; refuses a malformed one whole, running nothing', async (t) => {
  const init = ensureExecInit();
  const dir = tempDir(t, 'init');
  const nonce = newNonce();
  const encoded = encodeRunSpec({
    nonce,
    cwd: path.join(dir, 'made', 'here'),
    argv: ['env'],
    env: { GREETING: 'hello=world', PATH: '/usr/bin:/bin' },
  });
  if (!('bytes' in encoded)) throw new Error(encoded.error);
  const ran = await runInit(init, encoded.bytes);
  t.equal(ran.code, 0);
  t.match(ran.stdout, /^GREETING=hello=world$/m);
  t.equal(ran.stderr, `${controlMarker(nonce)}done\n`);

  const exit3 = encodeRunSpec({ nonce, cwd: dir, argv: ['sh', '-c', 'exit 3'], env: {} });
  if ('bytes' in exit3) t.equal((await runInit(init, exit3.bytes)).code, 3, "the command's exit code");
  const killed = encodeRunSpec({ nonce, cwd: dir, argv: ['sh', '-c', 'kill -TERM $$'], env: {} });
  if ('bytes' in killed) t.equal((await runInit(init, killed.bytes)).code, 128 + 15, '128 + signal');
  const missing = encodeRunSpec({ nonce, cwd: dir, argv: ['no-such-command-here'], env: {} });
  if ('bytes' in missing) {
    const r = await runInit(init, missing.bytes);
    t.equal(r.code, 127);
    t.equal(
      r.stderr,
      `${controlMarker(nonce)}error:cannot run no-such-command-here: No such file or directory\n`,
    );
  }
  const notExec = encodeRunSpec({ nonce, cwd: dir, argv: [path.join(dir)], env: {} });
  if ('bytes' in notExec) t.equal((await runInit(init, notExec.bytes)).code, 126, 'not executable: 126');

  const marker = path.join(dir, 'ran');
  const body = (records: string[]) => Buffer.from(records.map((r) => `${r}\0`).join(''));
  const spec = (records: string[]) => {
    const b = body(records);
    return Buffer.concat([Buffer.from(`DH1 ${b.length}\n`), b]);
  };
  const touch = [`N${nonce}`, `C${dir}`, 'A/usr/bin/touch', `A${marker}`];
  const bad: Array<[string, Buffer]> = [
    ['nothing at all', Buffer.alloc(0)],
    ['no header', body(touch)],
    ['a length past the limit', Buffer.from('DH1 99999999999\n')],
    ['a length longer than what follows', Buffer.concat([Buffer.from('DH1 500\n'), body(touch)])],
    ['a header without a number', Buffer.from('DH1 x\n')],
    ['a 40-byte header line', Buffer.from(`DH1 ${'1'.repeat(36)}\n`)],
    ['an unknown record', spec([...touch, 'Xboom'])],
    ['no nonce', spec(touch.slice(1))],
    ['a short nonce', spec(['Nabc', ...touch.slice(1)])],
    ['a nonce that is not hex', spec([`N${'z'.repeat(32)}`, ...touch.slice(1)])],
    ['two nonces', spec([`N${nonce}`, ...touch])],
    ['a relative working dir', spec([`N${nonce}`, 'Crel', ...touch.slice(2)])],
    ['no argv', spec(touch.slice(0, 2))],
    ['an env entry without =', spec([...touch, 'EFOO'])],
    ['an env entry with no name', spec([...touch, 'E=x'])],
    ['an empty record', spec([...touch, ''])],
    [
      'a last record without its NUL',
      (() => {
        const b = body(touch).subarray(0, -1);
        return Buffer.concat([Buffer.from(`DH1 ${b.length}\n`), b]);
      })(),
    ],
    ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))],
  ];
  for (const [what, input] of bad) {
    const r = await runInit(init, input);
    t.equal(r.code, 125, `${what}: exit 125`);
    t.notOk(r.stderr.includes(controlMarker(nonce)), `${what}: no control line`);
  }
  t.throws(() => readFileSync(marker), 'no malformed spec ran its command');
});
