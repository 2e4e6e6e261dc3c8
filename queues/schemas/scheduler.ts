import { type Static, Type } from 'typebox';

/** A tick: why it ran (interval, startup, api). */
export const TickPayload = Type.Object({ reason: Type.Optional(Type.String()) });
export type TickPayload = Static<typeof TickPayload>;

/** What the `scheduler` queue's processor returns: each tick handler's outcome. */
export const TickSummary = Type.Object({
  handlers: Type.Record(
    Type.String(),
    Type.Object({
      ok: Type.Boolean(),
      result: Type.Optional(Type.Unknown()),
      error: Type.Optional(Type.String()),
    }),
  ),
});
export type TickSummary = Static<typeof TickSummary>;
