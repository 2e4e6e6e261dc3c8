import { EventEmitter, once } from 'node:events';
import t from 'tap';
import { LoadError } from '../../core/errors.ts';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import type {
  Sandbox,
  SandboxChannel,
  SandboxDriver,
  SandboxExit,
  SandboxSpec,
} from '../../runtimes/sandbox.ts';
import { type FunctionImage, type PoolEvent, WarmPool } from '../../runtimes/warm-pool.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

/** A driver whose "containers" are plain objects: the pool's bookkeeping, without Docker. */
function fakeDriver() {
  const live = new Set<FakeSandbox>();
  const created: SandboxSpec[] = [];
  let next = 0;
  class FakeSandbox implements Sandbox {
    readonly id = `c${next++}`;
    readonly pid = 1000 + next;
    memoryMb: number;
    loaded: string | undefined;
    destroyed = false;
    readonly exited = new Promise<SandboxExit>(() => {});
    readonly channel: SandboxChannel;
    constructor(memoryMb: number) {
      this.memoryMb = memoryMb;
      this.channel = {
        waitFor: async () => ({ type: 'ready' }),
        request: async (m) => {
          if (m.handler === 'broken.handler')
            return { type: 'loaded', ok: false, error: { errorMessage: 'SyntaxError' } };
          if (m.handler === 'hangs.handler') return new Promise(() => {});
          this.loaded = String(m.handler);
          return { type: 'loaded', ok: true };
        },
        takeRaw: () => '',
        closed: undefined,
        overLimit: false,
        close: () => {},
      };
    }
    async resize(mb: number) {
      this.memoryMb = mb;
    }
    async destroy() {
      this.destroyed = true;
      live.delete(this);
    }
  }
  const all = new Map<string, FakeSandbox>();
  const driver: SandboxDriver = {
    async create(spec) {
      created.push(spec);
      const s = new FakeSandbox(spec.memoryMb);
      live.add(s);
      all.set(s.id, s);
      return s;
    },
    async removeLeftovers() {
      return 0;
    },
  };
  const destroyed = (sandbox: Sandbox) => all.get(sandbox.id)?.destroyed === true;
  return { driver, live, created, destroyed };
}

const fn = (name: string, extra: Partial<FunctionImage> = {}): FunctionImage => ({
  name,
  version: 'v1',
  runtime: 'node20',
  handler: 'index.handler',
  memoryMb: 256,
  network: 'none',
  env: {},
  concurrency: 2,
  loadFiles: async () => ({}),
  ...extra,
});

function makePool(options: Partial<ConstructorParameters<typeof WarmPool>[0]> = {}) {
  const { driver, live, created, destroyed } = fakeDriver();
  const events = new EventEmitter();
  const pool = new WarmPool({
    driver,
    runtimes: runtimeCatalog({ node20: 'n', python3: 'p', provided: 'c' }),
    minIdle: 1,
    max: 6,
    idleTtlMs: 60_000,
    onEvent: (event: PoolEvent, runtime) => events.emit(event, runtime),
    ...options,
  });
  return { pool, live, created, events, destroyed };
}

t.test('generic stock per runtime, specialised on first use, then reused', async (t) => {
  const { pool, live, created } = makePool();
  await pool.start();
  t.teardown(() => pool.close());
  t.same(pool.stats().generic, { node20: 1, python3: 1, provided: 1 });
  const first = await pool.acquire(fn('a'));
  t.equal(first.coldStart, false, 'a generic container was ready');
  t.equal(first.sandbox.memoryMb, 256, 'resized to the function');
  pool.release(fn('a'), first.sandbox, true);
  const second = await pool.acquire(fn('a'));
  t.equal(second.sandbox, first.sandbox, 'the same container again');
  pool.release(fn('a'), second.sandbox, true);
  await waitFor(() => created.length >= 4 && pool.stats().generic.node20 === 1, {
    what: 'the background refill of the generic stock',
  });
  t.equal(created.length, 4, 'the generic stock was refilled in the background');
  t.same(pool.stats().generic, { node20: 1, python3: 1, provided: 1 });
  t.ok(live.size >= 4);
});

t.test('a new version never reuses a container loaded with the old one', async (t) => {
  const { pool, destroyed } = makePool({ minIdle: 0 });
  await pool.start();
  t.teardown(() => pool.close());
  const v1 = await pool.acquire(fn('a'));
  pool.release(fn('a'), v1.sandbox, true);
  const v2 = await pool.acquire(fn('a', { version: 'v2' }));
  t.not(v2.sandbox, v1.sandbox);
  t.equal(v2.coldStart, true);
  t.equal(destroyed(v1.sandbox), true);
});

t.test('a sweep at another size neither takes nor destroys the containers of live traffic', async (t) => {
  const { pool, destroyed } = makePool({ minIdle: 0 });
  await pool.start();
  t.teardown(() => pool.close());
  const live = await pool.acquire(fn('a'));
  pool.release(fn('a'), live.sandbox, true);
  const variant = fn('a', { version: 'v1-m512', memoryMb: 512 });
  const swept = await pool.acquire(variant);
  t.not(swept.sandbox, live.sandbox);
  pool.release(variant, swept.sandbox, true);
  t.equal(destroyed(live.sandbox), false, 'the live container survived the sweep');
  const again = await pool.acquire(fn('a'));
  t.equal(again.sandbox, live.sandbox, 'and serves the next live call warm');
  t.equal(again.coldStart, false);
  pool.release(fn('a'), again.sandbox, true);
  pool.evict('a');
  t.equal(destroyed(swept.sandbox), true, 'evicting a function drops its sweep containers too');
});

t.test(
  'evict: a delete drops every container, busy ones on release; a redeploy keeps the new version',
  async (t) => {
    const { pool, destroyed } = makePool({ minIdle: 0 });
    await pool.start();
    t.teardown(() => pool.close());
    const idle = await pool.acquire(fn('a'));
    const busy = await pool.acquire(fn('a'));
    const other = await pool.acquire(fn('b'));
    pool.release(fn('a'), idle.sandbox, true);
    pool.release(fn('b'), other.sandbox, true);
    pool.evict('a');
    t.equal(destroyed(idle.sandbox), true, 'an idle container goes at once');
    t.equal(destroyed(busy.sandbox), false, 'a busy one finishes its call');
    pool.release(fn('a'), busy.sandbox, true);
    t.equal(destroyed(busy.sandbox), true, 'and goes when given back, healthy or not');
    t.equal(destroyed(other.sandbox), false, 'another function keeps its containers');
    t.equal(pool.stats().idleBound, 1);

    const v1 = await pool.acquire(fn('c'));
    const v2 = fn('c', { version: 'v2' });
    const fresh = await pool.acquire(v2);
    const variant = fn('c', { version: 'v2-m512', memoryMb: 512 });
    const swept = await pool.acquire(variant);
    pool.evict('c', 'v2');
    pool.release(fn('c'), v1.sandbox, true);
    pool.release(v2, fresh.sandbox, true);
    pool.release(variant, swept.sandbox, true);
    t.equal(destroyed(v1.sandbox), true, 'the old version goes');
    t.equal(destroyed(fresh.sandbox), false, 'the new version stays');
    t.equal(destroyed(swept.sandbox), false, "and so do the new version's sweep variants");
  },
);

t.test('unhealthy containers are destroyed and replaced; load errors surface', async (t) => {
  const { pool, events, destroyed } = makePool();
  await pool.start();
  t.teardown(() => pool.close());
  const lease = await pool.acquire(fn('a'));
  const replaced = once(events, 'replaced');
  pool.release(fn('a'), lease.sandbox, false);
  await replaced;
  t.equal(destroyed(lease.sandbox), true);
  await t.rejects(pool.acquire(fn('b', { handler: 'broken.handler' })), LoadError);
  t.equal(pool.stats().busy, 0, 'a failed load holds no slot');
});

t.test('a load that never finishes is a LoadError after loadTimeoutMs; its container goes', async (t) => {
  const { pool, live } = makePool({ minIdle: 0, loadTimeoutMs: 20 });
  await pool.start();
  t.teardown(() => pool.close());
  const err = await pool.acquire(fn('h', { handler: 'hangs.handler' })).catch((e: unknown) => e);
  t.type(err, LoadError);
  t.equal((err as LoadError).failure?.errorType, 'Runtime.InitTimeout');
  t.equal(pool.stats().busy, 0, 'no slot held');
  await waitFor(() => live.size === 0, { what: 'the hung container to be destroyed' });
});

t.test('per-function concurrency queues extra callers; the cap evicts the least recently used', async (t) => {
  const { pool, destroyed } = makePool({ minIdle: 0, max: 2 });
  await pool.start();
  t.teardown(() => pool.close());
  const f = fn('a', { concurrency: 1 });
  const one = await pool.acquire(f);
  let secondGot = false;
  const second = pool.acquire(f).then((l) => {
    secondGot = true;
    return l;
  });
  // Not a sleep: every fake settles in microtasks, so after one turn of the event loop an
  // acquire that did not wait would have resolved.
  await new Promise((r) => setImmediate(r));
  t.equal(secondGot, false, 'waits while the only slot is busy');
  pool.release(f, one.sandbox, true);
  const lease = await second;
  t.equal(lease.sandbox, one.sandbox);
  pool.release(f, lease.sandbox, true);

  const b = await pool.acquire(fn('b'));
  pool.release(fn('b'), b.sandbox, true);
  t.equal(pool.stats().total, 2);
  const c = await pool.acquire(fn('c'));
  t.equal(pool.stats().total, 2, 'POOL_MAX holds: the idle container of a made way');
  t.equal(destroyed(one.sandbox), true);
  pool.release(fn('c'), c.sandbox, true);
});

t.test('a full pool makes a call wait for a container, never fails it', async (t) => {
  const { pool, destroyed } = makePool({ minIdle: 0, max: 2 });
  await pool.start();
  t.teardown(() => pool.close());
  const a = await pool.acquire(fn('a'));
  const b = await pool.acquire(fn('b'));
  let got = false;
  const c = pool.acquire(fn('c')).then((lease) => {
    got = true;
    return lease;
  });
  await new Promise((r) => setImmediate(r)); // one turn settles every fake, as above
  t.equal(got, false, 'both containers busy: the third call waits');
  t.equal(pool.stats().total, 2);
  pool.release(fn('a'), a.sandbox, true);
  const lease = await c;
  t.equal(destroyed(a.sandbox), true, "a's idle container made way");
  t.equal(pool.stats().total, 2, 'POOL_MAX held throughout');
  pool.release(fn('b'), b.sandbox, false);
  pool.release(fn('c'), lease.sandbox, true);
  const waiting = pool.acquire(fn('d'));
  const e = pool.acquire(fn('e'));
  t.ok(await waiting);
  t.ok(await e);
  t.ok(pool.stats().total <= 2);
});

t.test('what is kept about a container (cgroup paths) is dropped when it is destroyed', async (t) => {
  const forgotten: string[] = [];
  const { pool } = makePool({ minIdle: 0, onDestroyed: (id) => forgotten.push(id) });
  await pool.start();
  t.teardown(() => pool.close());
  const lease = await pool.acquire(fn('a'));
  pool.release(fn('a'), lease.sandbox, false);
  t.same(forgotten, [lease.sandbox.id]);
});

t.test('idle containers expire after the TTL', async (t) => {
  const { pool, events, destroyed } = makePool({ minIdle: 0, idleTtlMs: 20 });
  await pool.start();
  t.teardown(() => pool.close());
  const lease = await pool.acquire(fn('a'));
  pool.release(fn('a'), lease.sandbox, true);
  // The pool's sweeper timer is unref'd (it must not keep a worker alive); this test is what waits.
  const hold = setInterval(() => {}, 1000);
  await once(events, 'expired');
  clearInterval(hold);
  t.equal(pool.stats().idleBound, 0);
  t.equal(destroyed(lease.sandbox), true);
});

t.test(
  'concurrent first calls of a function respect its concurrency while containers are made',
  async (t) => {
    const { pool, created } = makePool({ minIdle: 0 });
    await pool.start();
    t.teardown(() => pool.close());
    const single = fn('solo', { concurrency: 1 });
    const one = pool.acquire(single);
    const two = pool.acquire(single);
    const three = pool.acquire(single);
    const first = await one;
    t.equal(created.length, 1, 'one container for one slot, however many calls arrive at once');
    pool.release(single, first.sandbox, true);
    const second = await two;
    t.equal(second.sandbox, first.sandbox, 'the next call waited and reused it');
    pool.release(single, second.sandbox, true);
    const third = await three;
    t.equal(third.sandbox, first.sandbox);
    pool.release(single, third.sandbox, true);
    t.equal(created.length, 1);
  },
);
