import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';

/** Every temp directory a test makes starts with this, so the leak check finds this process's own. */
export const TEMP_DIR_PREFIX = `dockhand-test-${process.pid}-`;

/** A fresh directory under the OS temp dir, removed when `t` ends. */
export function tempDir(t: Test, label = 'tmp'): string {
  const dir = mkdtempSync(path.join(tmpdir(), `${TEMP_DIR_PREFIX}${label}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
