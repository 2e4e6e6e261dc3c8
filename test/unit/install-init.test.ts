import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../core/config.ts';
import { installInit } from '../../runtimes/exec-init/install-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

t.test('copies dh-init to EXEC_INIT_PATH once, executable, and again when it changed', async (t) => {
  const dir = tempDir(t, 'init');
  const source = path.join(dir, 'dh-init');
  await writeFile(source, 'build one');
  const target = path.join(dir, 'shared', 'bin', 'dh-init');

  t.equal(await installInit(source, target), true, 'missing: written (its directory made)');
  t.equal(await readFile(target, 'utf8'), 'build one');
  t.equal((await stat(target)).mode & 0o777, 0o755, 'any container user may run it');
  t.equal(await installInit(source, target), false, 'identical: left alone');

  await writeFile(source, 'build two');
  t.equal(await installInit(source, target), true, 'another build replaces it');
  t.equal(await readFile(target, 'utf8'), 'build two');
  t.same(await readdir(path.dirname(target)), ['dh-init'], 'no temporary file is left');

  await t.rejects(installInit(path.join(dir, 'none'), target), { code: 'ENOENT' });
  t.equal(await readFile(target, 'utf8'), 'build two', 'a failed copy leaves the old one');
});

t.test('EXEC_INIT_PATH is an absolute path, unset by default', async (t) => {
  t.equal(loadConfig({}).exec.initPath, undefined);
  t.equal(
    loadConfig({ EXEC_INIT_PATH: '/var/lib/dockhand/bin/dh-init' }).exec.initPath,
    '/var/lib/dockhand/bin/dh-init',
  );
  t.throws(() => loadConfig({ EXEC_INIT_PATH: 'bin/dh-init' }), {
    message: 'EXEC_INIT_PATH must be an absolute path on the Docker host (got "bin/dh-init").',
  });
});
