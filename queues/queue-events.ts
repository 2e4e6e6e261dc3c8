import type { QueueEvents } from 'bullmq';

/**
 * BullMQ's close QUITs its own (duplicated) blocking client and waits for the reply, which
 * never comes while Redis is away: then that client is dropped and the close not awaited. A
 * client that never connected (the role started and stopped while Redis was away) has nothing
 * to drop.
 */
export async function closeQueueEvents(events: QueueEvents): Promise<void> {
  const client = await (
    events as unknown as { backend: { client: Promise<{ status: string; disconnect(): void }> } }
  ).backend.client.catch(() => undefined);
  if (client?.status === 'ready') return events.close();
  client?.disconnect();
  // Closing a stream whose connection is already gone: nothing left to release.
  void events.close().catch(() => {});
}
