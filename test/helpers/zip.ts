import yazl from 'yazl';

/**
 * Builds a zip in memory. `rename` swaps an entry name afterwards, byte for byte in both the
 * local header and the central directory, to make archives yazl itself refuses to write
 * (zip slip, absolute paths, backslashes): hostile uploads are made by other tools.
 */
export async function makeZip(
  entries: Array<{ name: string; content: string | Buffer; mode?: number; compress?: boolean }>,
  rename: Record<string, string> = {},
): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    zip.addBuffer(Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content), e.name, {
      mode: e.mode,
      compress: e.compress ?? true,
    });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  let buffer = Buffer.concat(chunks);
  for (const [from, to] of Object.entries(rename)) {
    if (from.length !== to.length) throw new Error('rename keeps lengths equal');
    buffer = Buffer.from(buffer.toString('latin1').split(from).join(to), 'latin1');
  }
  return buffer;
}
