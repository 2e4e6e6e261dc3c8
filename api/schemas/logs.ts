import { Type } from 'typebox';
import { STREAM_ID_PATTERN } from '../../queues/log-reader.ts';
import { JobId } from './jobs.ts';

export const InvocationLogParams = Type.Object({ requestId: JobId });
export const ExecLogParams = Type.Object({ execution_id: JobId });
// A node's log is under the id registration answered (a UUID), like the node's other routes.
export { NodeParams as NodeLogParams } from './nodes.ts';

export const LogQuery = Type.Object(
  {
    follow: Type.Optional(
      Type.Enum(['1', 'true', '0', 'false'], {
        description:
          '1: after what was logged so far, stream new output until the call ends (then `end`) or the client leaves. Default: what was logged so far, then close.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LogHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: STREAM_ID_PATTERN,
      description: 'Resume after this event id (browsers send it when they reconnect).',
    }),
  ),
});

/** The events, as the OpenAPI document shows them (the route writes them by hand, see api/event-stream.ts). */
export const LogEventStream = {
  description: [
    'Server-Sent Events (text/event-stream). Each event has an `id:` (resume with Last-Event-ID).',
    '`event: log` — `data: {"stream":"stdout"|"stderr","text":"…","ts":<ms since epoch>}`: a piece of output, often several lines;',
    '`event: end` — `data: {"status":"…"}`: the call ended (an invocation: SUCCESS, FAILED, TIMEOUT; an execution: succeeded, failed, timeout, cancelled); the stream closes.',
    'Comment lines (`: ping`) every 15 s keep proxies from closing an idle stream.',
  ].join('\n'),
  content: { 'text/event-stream': { schema: Type.String() } },
};
