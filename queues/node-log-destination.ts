import { Writable } from 'node:stream';
import { isNodeId, type LogWriter } from './log-stream.ts';

/**
 * A pino destination (add it with pino.multistream) that ships this process's own log lines
 * to its node's live log (`GET /api/v1/nodes/:id/logs`). Until the node agent has registered
 * and `nodeId()` answers, lines are not kept anywhere: there is no stream to put them in.
 * It never blocks or fails the logger: each line is queued by the writer, which batches and
 * drops (counted) rather than wait on Redis.
 */
export function createNodeLogDestination(
  writer: Pick<LogWriter, 'append'>,
  nodeId: () => string | undefined,
): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      try {
        const id = nodeId();
        if (id !== undefined && isNodeId(id))
          writer.append('node', id, typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      } catch {
        // A getter that throws means no node id yet: the line is not shipped, the logger goes on.
      }
      callback();
    },
  });
}
