/** One Server-Sent Event: its name (default `message`), data lines joined, and id. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Splits what has arrived so far into complete events and the unfinished rest (kept for the
 * next chunk). Comments (`: ping`) and events without data are dropped, as browsers do.
 */
export function parseSse(text: string): { events: SseEvent[]; rest: string } {
  const normalised = text.replace(/\r\n?/g, '\n');
  const blocks = normalised.split('\n\n');
  const rest = blocks.pop() ?? '';
  const events: SseEvent[] = [];
  for (const block of blocks) {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (data.length > 0) events.push({ event, data: data.join('\n'), ...(id === undefined ? {} : { id }) });
  }
  return { events, rest };
}
