import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import { createFunctionStore, localCodeStorage } from '../../processors/functions/function-store.ts';
import { REDIS_URL, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

const prefix = `t${randomBytes(5).toString('hex')}`;
const redis = new Redis(REDIS_URL);
t.teardown(async () => {
  await wipePrefix(prefix);
  await redis.quit();
});
const store = createFunctionStore({ redis, prefix, code: localCodeStorage(tempDir(t, 'code')) });
const config = {
  runtime: 'node20' as const,
  handler: 'index.handler',
  memoryMb: 128,
  timeoutMs: 1000,
  env: {},
  network: 'none' as const,
  concurrency: 1,
};

t.test(
  'a deleted function is gone from this process too: no queued call runs its code from memory',
  async (t) => {
    const { record } = await store.put('gone', config, { 'index.js': 'ZXhwb3J0cw==' });
    t.same(await store.getVersion('gone', record.version), record, 'known and cached');
    t.ok(await store.bundle(record));
    t.equal(await store.remove('gone'), true);
    t.equal(await store.getVersion('gone', record.version), undefined, 'the cached version went with it');
  },
);

t.test('a record not written by Dockhand is refused before its name or version become a path', async (t) => {
  const { record } = await store.put('tampered', config, { 'index.js': 'ZXhwb3J0cw==' });
  const hash = `${prefix}:functions`;
  for (const change of [{ version: '../../../etc/passwd' }, { memoryMb: 20000 }, { name: 'other' }]) {
    await redis.hset(hash, 'tampered', JSON.stringify({ ...record, ...change }));
    await t.rejects(store.get('tampered'), { code: 'function_record_invalid' }, JSON.stringify(change));
  }
  await redis.hset(hash, 'tampered', 'not json');
  await t.rejects(store.list(), { code: 'function_record_invalid' });
  await redis.hdel(hash, 'tampered');
});
