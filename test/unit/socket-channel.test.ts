import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  CHANNEL_MOUNT,
  chooseChannel,
  type PendingChannel,
  SOCKET_IN_CONTAINER,
  TOKEN_ENV,
} from '../../runtimes/socket-channel.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

const owner = `${hostname()}/${process.pid}`;

/** Socket channels under a fresh temp root, as FUNCTIONS_CHANNEL=socket makes them. */
async function socketsIn(t: Test, connectTimeoutMs?: number) {
  const initPath = ensureExecInit();
  const root = path.join(tempDir(t, 'sock'), 'sockets');
  const { sockets } = await chooseChannel('socket', undefined, { initPath, root, owner, connectTimeoutMs });
  if (!sockets) throw new Error('no sockets');
  return { initPath, root, sockets };
}

/** The listening socket's host path, from the bind the container would get. */
function socketPathOf(pending: PendingChannel): string {
  const dirBind = pending.wrap({ image: 'i', cmd: ['x'], memoryMb: 128 }).binds?.at(-1) ?? '';
  return path.join(dirBind.split(':')[0] as string, 's');
}

t.test('FUNCTIONS_CHANNEL: auto takes sockets only where they can work', async (t) => {
  const initPath = ensureExecInit();
  const root = path.join(tempDir(t, 'sock'), 'sockets');
  const usable = await chooseChannel('auto', undefined, { initPath, root, owner });
  t.ok(usable.sockets, 'a local engine, dh-init built, a short path: sockets');
  t.ok((await chooseChannel('auto', 'unix:///var/run/docker.sock', { initPath, root, owner })).sockets);

  const attach = await chooseChannel('attach', undefined, { initPath, root, owner });
  t.equal(attach.sockets, undefined, 'attach is taken when asked for');
  t.equal(attach.reason, 'FUNCTIONS_CHANNEL=attach');

  const remote = await chooseChannel('auto', 'tcp://10.0.0.5:2375', { initPath, root, owner });
  t.equal(remote.sockets, undefined, 'an engine on another host cannot reach a socket here');
  t.match(remote.reason, /not on this host/);

  const missing = await chooseChannel('auto', undefined, { initPath: '/nonexistent/dh-init', root, owner });
  t.equal(missing.sockets, undefined);
  t.match(missing.reason, /dh-init is missing at \/nonexistent\/dh-init/);

  const long = await chooseChannel('auto', undefined, {
    initPath,
    root: path.join('/tmp', 'x'.repeat(90)),
    owner,
  });
  t.equal(long.sockets, undefined, 'a socket path past 107 bytes cannot be bound');
  t.match(long.reason, /past a unix socket's 107/);
  // Bytes, not characters: 40 three-byte characters are 120 bytes.
  const wide = await chooseChannel('auto', undefined, {
    initPath,
    root: path.join('/tmp', '☃'.repeat(40)),
    owner,
  });
  t.equal(wide.sockets, undefined, 'the limit counts bytes');

  await t.rejects(
    chooseChannel('socket', undefined, { initPath: '/nonexistent/dh-init', root, owner }),
    { message: /^FUNCTIONS_CHANNEL=socket cannot work: dh-init is missing/, field: 'FUNCTIONS_CHANNEL' },
    'socket insists: start-up stops with the reason',
  );
  t.notOk(existsSync(root), 'choosing makes nothing on disk');
});

t.test('a listener takes the two connections that carry the token, and no stranger', async (t) => {
  const { initPath, root, sockets } = await socketsIn(t);
  const pending = await sockets.listen();
  const spec = pending.wrap({
    image: 'img',
    cmd: ['/usr/bin/node', '/b.mjs'],
    memoryMb: 128,
    binds: ['/a:/b:ro'],
  });
  t.same(spec.entrypoint, ['/.dockhand/init']);
  t.same(spec.cmd, ['--connect', SOCKET_IN_CONTAINER, '/usr/bin/node', '/b.mjs']);
  const token = spec.env?.[TOKEN_ENV] ?? '';
  t.match(token, /^[0-9a-f]{64}$/, 'a token of its own, in the environment (argv is world-readable)');
  const dirBind = spec.binds?.find((b) => b.endsWith(`:${CHANNEL_MOUNT}:ro`)) ?? '';
  t.same(spec.binds?.slice(0, 2), ['/a:/b:ro', `${initPath}:/.dockhand/init:ro`], 'dh-init bound read-only');
  const dir = dirBind.split(':')[0] as string;
  t.equal(statSync(dir).mode & 0o777, 0o711, 'the container may pass through, not list');
  t.equal(statSync(path.join(dir, 's')).mode & 0o777, 0o666, 'any container user may connect');

  // A stranger on this host (the path is in /proc/net/unix) connects first, with a wrong token.
  const stranger = connect(path.join(dir, 's'));
  stranger.on('error', () => {});
  await once(stranger, 'connect');
  const strangerClosed = once(stranger, 'close');
  stranger.write(`${'0'.repeat(64)} io\n`);
  // dh-init on the host stands in for the container: stdio over the socket, then the program.
  const child = spawn(
    initPath,
    ['--connect', path.join(dir, 's'), 'sh', '-c', 'read x; echo "got $x"; env; echo oops >&2'],
    {
      stdio: 'ignore',
      env: { PATH: '/usr/bin:/bin', [TOKEN_ENV]: token },
    },
  );
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const io = await pending.connected(new Promise(() => {}));
  t.notOk(existsSync(dir), 'the directory is gone once both connected: nothing else can connect');
  await strangerClosed;
  t.pass('the stranger was cut off and not counted: dh-init got stdio');
  const out: string[] = [];
  const err: string[] = [];
  io.stdio.on('data', (d) => out.push(String(d)));
  io.stderr.on('data', (d) => err.push(String(d)));
  const ended = Promise.all([io.stdio, io.stderr].map((s) => once(s, 'end')));
  io.stdio.resume();
  io.stderr.resume();
  io.stdio.write('hello\n');
  t.equal(await exited, 0);
  await ended;
  t.match(out.join(''), /^got hello\n/, 'the io connection is stdin and stdout');
  t.notMatch(out.join(''), TOKEN_ENV, 'the program never sees the token');
  t.equal(err.join(''), 'oops\n', 'the err connection is stderr');
  io.stdio.destroy();
  io.stderr.destroy();
  t.equal(await sockets.removeLeftovers(), 1, "this process's owner directory goes when nothing starts");
  t.same(readdirSync(root), []);
});

t.test('a listener gives up when the container exits first, or never connects', async (t) => {
  const { root, sockets } = await socketsIn(t, 200);
  const early = await sockets.listen();
  await t.rejects(early.connected(Promise.resolve({ exitCode: 125 })), {
    message: /exited before connecting to its socket .*DATA_DIR and dh-init must be at the same paths/,
  });
  const late = await sockets.listen();
  await t.rejects(late.connected(new Promise(() => {})), {
    message: /did not connect to its socket within 200 ms \(DATA_DIR and dh-init must be at the same paths/,
  });
  const abandoned = await sockets.listen();
  const early1 = connect(socketPathOf(abandoned));
  early1.on('error', () => {});
  await once(early1, 'connect');
  const closed = once(early1, 'close');
  await abandoned.abandon();
  await closed;
  t.pass('a connection taken before abandon() is closed with it');
  t.same(
    readdirSync(path.join(root, readdirSync(root)[0] as string)),
    [],
    'no directory left by any of them',
  );
  await sockets.removeLeftovers();
});

t.test(
  'strangers that say nothing, or too much, never count and are cut off with the listener',
  async (t) => {
    const { sockets } = await socketsIn(t, 300);
    const pending = await sockets.listen();
    const socketPath = socketPathOf(pending);
    const silent = connect(socketPath);
    const chatty = connect(socketPath);
    for (const s of [silent, chatty]) s.on('error', () => {});
    await Promise.all([once(silent, 'connect'), once(chatty, 'connect')]);
    const closed = Promise.all([once(silent, 'close'), once(chatty, 'close')]);
    chatty.write('x'.repeat(4096));
    await t.rejects(pending.connected(new Promise(() => {})), {
      message: /did not connect to its socket within 300 ms/,
    });
    await closed;
    t.pass('both closed: neither was taken for the container');
    await sockets.removeLeftovers();
  },
);

t.test('a symlink where the socket directory should be is refused, not followed', async (t) => {
  const initPath = ensureExecInit();
  const base = tempDir(t, 'sock');
  const elsewhere = path.join(base, 'elsewhere');
  await mkdir(elsewhere);
  await symlink(elsewhere, path.join(base, 'sockets'));
  const { sockets } = await chooseChannel('socket', undefined, {
    initPath,
    root: path.join(base, 'sockets'),
    owner,
  });
  if (!sockets) throw new Error('no sockets');
  await t.rejects(sockets.listen(), { message: /must be a directory of this process's user, not a link/ });
  t.same(readdirSync(elsewhere), [], 'nothing was made through the link');
});

t.test(
  'leftovers: a dead process on this host loses its socket directory, another host keeps its own',
  async (t) => {
    const { root, sockets } = await socketsIn(t);
    const dead = path.join(root, `${hostname()}-999999999`, 'abc');
    const other = path.join(root, 'another-host-1', 'abc');
    await mkdir(dead, { recursive: true });
    await mkdir(other, { recursive: true });
    await writeFile(path.join(dead, 's'), '');
    await sockets.removeLeftovers();
    t.notOk(existsSync(path.dirname(dead)));
    t.ok(existsSync(other), 'processes on other hosts are not judged here');
  },
);

t.test('dh-init --connect refuses what it cannot do, in one line', async (t) => {
  const initPath = ensureExecInit();
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(initPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });
  const usage = await run(['--connect', '/tmp/s']);
  t.equal(usage.code, 125);
  t.match(
    usage.stderr,
    /^dh-init: usage: DOCKHAND_CHANNEL_TOKEN=<token> dh-init --connect <socket> <program>/,
  );
  const tokenless = await run(['--connect', '/tmp/s', '/bin/true']);
  t.equal(tokenless.code, 125);
  t.equal(tokenless.stderr, 'dh-init: DOCKHAND_CHANNEL_TOKEN is missing or not 32-128 hex digits\n');
  const nowhere = await run(['--connect', '/nonexistent/s', '/bin/true'], { [TOKEN_ENV]: 'ab'.repeat(32) });
  t.equal(nowhere.code, 125);
  t.equal(nowhere.stderr, 'dh-init: cannot connect to /nonexistent/s: No such file or directory\n');
});
