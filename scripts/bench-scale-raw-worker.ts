// One raw BullMQ worker process for bench:scale's baseline: the same queue, the same
// concurrency and the same loopback fetch as a Dockhand worker's HTTP jobs, with nothing of
// Dockhand's around it. Says `ready` on stdout once its Worker is; SIGTERM closes it.
// Env (set by bench-scale.ts): BENCH_REDIS_URL, BENCH_PREFIX, BENCH_CONCURRENCY.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { request } from 'undici';

const connection = new Redis(process.env.BENCH_REDIS_URL as string, { maxRetriesPerRequest: null });
const worker = new Worker(
  'http-jobs',
  async (job) => {
    const res = await request(job.data.url);
    return { statusCode: res.statusCode, body: await res.body.text() };
  },
  {
    connection,
    prefix: process.env.BENCH_PREFIX as string,
    concurrency: Number(process.env.BENCH_CONCURRENCY),
  },
);
process.once('SIGTERM', async () => {
  await worker.close();
  connection.disconnect();
  process.exit(0);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
