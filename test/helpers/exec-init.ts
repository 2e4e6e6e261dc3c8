import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { DEFAULT_INIT_PATH } from '../../runtimes/exec-init/install-init.ts';

/** dh-init as scripts/prepare.sh builds it (a no-op when the binary is current). */
export function ensureExecInit(): string {
  execFileSync('bash', [path.resolve(import.meta.dirname, '../../scripts/build-exec-init.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return DEFAULT_INIT_PATH;
}
