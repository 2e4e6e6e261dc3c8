import { randomBytes } from 'node:crypto';

/**
 * The run spec dh-init reads on stdin (runtimes/exec-init/dh-init.c has the grammar): a header
 * with the length, then NUL-terminated records, one tag byte each. The limits are dh-init's.
 */
export const MAX_SPEC_BYTES = 8 * 1024 * 1024;
export const MAX_ARGS = 4096;
export const MAX_ENV = 4096;

export interface RunSpec {
  nonce: string;
  cwd: string;
  argv: string[];
  env: Record<string, string>;
}

/** A fresh secret for one container's control lines: 32 hex digits. */
export const newNonce = () => randomBytes(16).toString('hex');

/** The marker dh-init puts before each line it writes to the host, on stderr. */
export const controlMarker = (nonce: string) => `\x1eDH:${nonce}:`;

/** The spec's bytes, or one sentence saying why it cannot be sent (dh-init would refuse it). */
export function encodeRunSpec(spec: RunSpec): { bytes: Buffer } | { error: string } {
  if (spec.argv.length === 0 || spec.argv[0] === '') return { error: 'The command is empty.' };
  if (spec.argv.length > MAX_ARGS) return { error: `The command has more than ${MAX_ARGS} arguments.` };
  const env = Object.entries(spec.env);
  if (env.length > MAX_ENV) return { error: `There are more than ${MAX_ENV} environment variables.` };
  if (!spec.cwd.startsWith('/')) return { error: 'The working directory is not an absolute path.' };
  const nul = (s: string) => s.includes('\0');
  if (spec.argv.some(nul)) return { error: 'An argument of the command contains a NUL character.' };
  if (nul(spec.cwd)) return { error: 'The working directory contains a NUL character.' };
  for (const [k, v] of env) {
    if (!/^[^=\0]+$/.test(k))
      return { error: `The environment variable name ${JSON.stringify(k)} is not valid.` };
    if (nul(v)) return { error: `The environment variable ${k} contains a NUL character.` };
  }
  const records = [
    `N${spec.nonce}`,
    `C${spec.cwd}`,
    ...spec.argv.map((a) => `A${a}`),
    ...env.map(([k, v]) => `E${k}=${v}`),
  ];
  const body = Buffer.from(`${records.join('\0')}\0`);
  if (body.length > MAX_SPEC_BYTES)
    return { error: `The command and environment take more than ${MAX_SPEC_BYTES} bytes.` };
  return { bytes: Buffer.concat([Buffer.from(`DH1 ${body.length}\n`), body]) };
}
