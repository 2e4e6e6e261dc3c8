import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '../core/config.ts';
import { coerceError, DockhandError, errorCode, UsageError } from '../core/errors.ts';
import { ROLE_NAMES, type Role } from '../roles/names.ts';

// Each command imports only what it needs: `enqueue` must start fast, without the AWS SDK,
// Docker, Fastify or Bull Board that a role loads.

const USAGE = `Usage:
  dockhand [all|gateway|worker|scheduler|bridge] run one role (all = gateway + worker + scheduler + bridge)
  dockhand agent                                run the node agent only (register + heartbeats to CONTROL_PLANE_URL)
  dockhand enqueue <queue> <file.json|-> [--wait] [--job-id ID]
  dockhand batch run-once                       score the newest pending batch (exit 0 ok, 1 engine, 2 write)
  dockhand openapi                              print the OpenAPI document
`;

/** Exit codes: 0 ok, 1 runtime failure (or the job failed), 2 bad usage or bad input. */
async function main(argv: string[]): Promise<number> {
  const [command = 'all', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig();
  const role = ROLE_NAMES.find((r) => r === command);
  if (role) return runRole(role, config);
  if (command === 'enqueue') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { wait: { type: 'boolean', default: false }, 'job-id': { type: 'string' } },
    });
    const [queue, source] = positionals;
    if (!queue || !source) throw new UsageError('enqueue needs a queue name and a file (or - for stdin).');
    const { enqueueFromCli } = await import('./enqueue-command.ts');
    return enqueueFromCli(config, { queue, source, wait: values.wait ?? false, jobId: values['job-id'] });
  }
  if (command === 'batch') {
    if (rest[0] !== 'run-once') throw new UsageError(`Usage: dockhand batch run-once\n${USAGE}`);
    const { batchRunOnce } = await import('./batch-command.ts');
    return batchRunOnce(config);
  }
  if (command === 'openapi') {
    const { describeApi } = await import('../roles/openapi.ts');
    process.stdout.write(`${JSON.stringify(await describeApi(config), null, 2)}\n`);
    return 0;
  }
  throw new UsageError(`Unknown command ${JSON.stringify(command)}.\n${USAGE}`);
}

async function runRole(role: Role, config: Config): Promise<number> {
  const [{ startRoleProcess }, { default: closeWithGrace }] = await Promise.all([
    import('../roles/index.ts'),
    import('close-with-grace'),
  ]);
  const running = await startRoleProcess(role, config, { logger: { level: config.server.logLevel } });
  running.log.info({ role, url: running.url, prefix: config.redis.prefix }, 'dockhand started');
  // First signal: graceful (active jobs finish, up to a minute: the longest HTTP job). Second: exit now.
  closeWithGrace({ delay: 65_000 }, async ({ signal, err }) => {
    if (err) running.log.error({ err }, 'fatal error, shutting down');
    else running.log.info({ signal }, 'shutting down');
    await running.close();
  });
  return new Promise<number>(() => {}); // runs until a signal
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // One sentence for the person at the terminal; a stack only for what we did not foresee.
    if (err instanceof DockhandError) {
      process.stderr.write(`dockhand: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    // A file the OS refused is a sentence too; anything else we did not foresee keeps its stack.
    const error = coerceError(err);
    const osRefusal = ['ENOENT', 'EACCES', 'EPERM'].includes(errorCode(error) ?? '');
    process.stderr.write(`dockhand: ${osRefusal ? error.message : error.stack}\n`);
    process.exit(1);
  },
);
