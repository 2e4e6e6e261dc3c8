import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError, TooLargeError, ValidationError } from '../../core/errors.ts';
import { createMinioClient } from '../../processors/exec/minio-transfer.ts';
import { checkInputPaths, type ExecInputData, writeInputs } from '../../processors/exec/workspace-input.ts';
import { checkOutputPaths, collectOutputs } from '../../processors/exec/workspace-output.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

const LIMITS = { maxFileBytes: 1024, maxInputBytes: 4096 };

/** A workspace as the container runner hands it over: input/, output/ and config/, empty. */
function workspace(t: Test): string {
  const root = tempDir(t, 'workspace');
  for (const dir of ['input', 'output', 'config']) mkdirSync(path.join(root, dir));
  return root;
}

/** The error `fn` throws (failing the test when it throws nothing). */
function caught(t: Test, fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  t.fail('expected an error');
  return new Error('none');
}

const file = (p: string, content = 'x') => ({ name: path.basename(p) || 'f', path: p, content });

t.test('checkInputPaths refuses every way out of input/, naming the field and the file', async (t) => {
  const outside = ['../../etc/passwd', '..', 'a/../../b', 'a/..', 'a/b/../../../c', '/etc/passwd', '/'];
  for (const p of outside) {
    const err = caught(t, () =>
      checkInputPaths({ files: [file('ok.txt'), file('also.txt'), file(p)] }, LIMITS),
    );
    t.type(err, ValidationError, p);
    t.equal((err as ValidationError).field, 'input.files[2].path', p);
    t.equal(err.message, `File ${JSON.stringify(p)} would be written outside /workspace/input.`, p);
  }
  const refused: [string, RegExp][] = [
    ['..\\..\\etc\\passwd', /backslashes/],
    ['a\\b', /backslashes/],
    ['a\0b', /NUL/],
    ['a\n/../../x', /control characters/],
    ['a\u2028b', /control characters/],
    ['a//b', /empty segment/],
    ['a/', /empty segment/],
    ['', /empty/],
    ['./a', /`\.` segment/],
    ['a/./b', /`\.` segment/],
    [`${'x'.repeat(256)}/y`, /longer than 255 bytes/],
  ];
  for (const [i, [p, why]] of refused.entries()) {
    const err = caught(t, () => checkInputPaths({ files: [file(p)] }, LIMITS));
    t.type(err, ValidationError, `refused path #${i}`);
    t.match(err.message, why, `refused path #${i}`);
    t.notMatch(err.message, /[\0\n\u2028]/, 'no control character travels into the message');
  }
});

t.test('checkInputPaths: the name is the path when path is absent; MinIO local paths too', async (t) => {
  let err = caught(t, () =>
    checkInputPaths(
      {
        files: [
          { name: 'ok', content: '' },
          { name: '../x', content: '' },
        ],
      },
      LIMITS,
    ),
  );
  t.equal((err as ValidationError).field, 'input.files[1].name');
  t.match(err.message, /would be written outside/);
  err = caught(t, () =>
    checkInputPaths({ minio_objects: [{ object_name: 'a', local_path: '../../root/.ssh/x' }] }, LIMITS),
  );
  t.equal((err as ValidationError).field, 'input.minio_objects[0].local_path');
  t.equal(err.message, 'File "../../root/.ssh/x" would be written outside /workspace/input.');
  t.doesNotThrow(() =>
    checkInputPaths(
      {
        graph_data: { nodes: [] },
        config_data: { a: 1 },
        files: [{ name: 'script.py', content: 'print(1)' }, file('lib/deep/util.py'), file('..data')],
        minio_objects: [{ object_name: '../weird/key', local_path: 'data/in.csv' }],
      },
      LIMITS,
    ),
  );
  t.doesNotThrow(() => checkInputPaths(undefined, LIMITS));
});

t.test(
  'checkInputPaths refuses two entries writing one path, or a file where a directory goes',
  async (t) => {
    const cases: [ExecInputData, string, RegExp][] = [
      [
        { files: [file('a.txt'), file('a.txt')] },
        'input.files[1].path',
        /also written by input\.files\[0\]\.path/,
      ],
      [
        { files: [{ name: 'a.txt', content: '' }, file('a.txt')] },
        'input.files[1].path',
        /also written by input\.files\[0\]\.name/,
      ],
      [{ graph_data: {}, files: [file('graph_data.json')] }, 'input.files[0].path', /input\.graph_data/],
      [
        { files: [file('a')], minio_objects: [{ object_name: 'o', local_path: 'a' }] },
        'input.minio_objects[0].local_path',
        /also written/,
      ],
      [
        { files: [file('a'), file('a/b')] },
        'input.files[1].path',
        /needs a directory where input\.files\[0\]\.path writes a file/,
      ],
      [{ files: [file('a/b'), file('a')] }, 'input.files[1].path', /also written by input\.files\[0\]\.path/],
    ];
    for (const [input, field, message] of cases) {
      const err = caught(t, () => checkInputPaths(input, LIMITS));
      t.type(err, ValidationError);
      t.equal((err as ValidationError).field, field);
      t.match(err.message, message);
    }
    // config/config.json and input/config.json are different files.
    t.doesNotThrow(() => checkInputPaths({ config_data: {}, files: [file('config.json')] }, LIMITS));
  },
);

t.test('checkInputPaths: sizes after decoding, per file and in all', async (t) => {
  const limits = { maxFileBytes: 9, maxInputBytes: 20 };
  // 12 base64 characters are 9 bytes: the cap counts what is written, not what was sent.
  const nine = Buffer.from('123456789').toString('base64');
  t.doesNotThrow(() =>
    checkInputPaths({ files: [{ name: 'b', content: nine, encoding: 'base64' }] }, limits),
  );
  const ten = Buffer.from('1234567890').toString('base64');
  let err = caught(t, () =>
    checkInputPaths({ files: [{ name: 'b.bin', content: ten, encoding: 'base64' }] }, limits),
  );
  t.type(err, TooLargeError);
  t.equal((err as TooLargeError).statusCode, 413);
  t.equal((err as TooLargeError).field, 'input.files[0].name');
  t.equal(err.message, 'File "b.bin" is 10 bytes, over the 9-byte limit for one input file.');
  // UTF-8 is counted in bytes: 5 characters, 10 bytes.
  err = caught(t, () => checkInputPaths({ files: [file('u.txt', 'ééééé')] }, limits));
  t.type(err, TooLargeError);
  err = caught(t, () =>
    checkInputPaths({ files: [file('a', '12345678'), file('b', '12345678'), file('c', '12345')] }, limits),
  );
  t.type(err, TooLargeError);
  t.equal((err as TooLargeError).field, 'input.files[2].path');
  t.equal(err.message, 'The input passes its 20-byte limit in all at file "c".');
  // graph_data is a file like the others.
  err = caught(t, () => checkInputPaths({ graph_data: { nodes: [1, 2, 3, 4] } }, limits));
  t.type(err, TooLargeError);
  t.equal((err as TooLargeError).field, 'input.graph_data');
});

t.test('checkInputPaths refuses base64 that does not decode', async (t) => {
  for (const content of ['abc$', 'a', '====', 'ab=c']) {
    const err = caught(t, () =>
      checkInputPaths({ files: [{ name: 'b', content, encoding: 'base64' }] }, LIMITS),
    );
    t.type(err, ValidationError, content);
    t.equal((err as ValidationError).field, 'input.files[0].content');
  }
  // Line-wrapped base64 (as many encoders write it) is fine.
  t.doesNotThrow(() =>
    checkInputPaths({ files: [{ name: 'b', content: 'aGVs\nbG8=\n', encoding: 'base64' }] }, LIMITS),
  );
});

t.test(
  'writeInputs writes files, base64, subdirectories, graph_data and config_data, readable by anyone',
  async (t) => {
    const ws = workspace(t);
    const previous = process.umask(0o077);
    t.teardown(() => process.umask(previous));
    const binary = Buffer.from([0, 1, 2, 255, 254, 10]);
    const { bytes } = await writeInputs(
      ws,
      {
        graph_data: { nodes: [{ id: '1' }], relationships: [] },
        files: [
          { name: 'script.py', content: 'print("hé")\n' },
          {
            name: 'blob.bin',
            path: 'lib/deep/blob.bin',
            content: binary.toString('base64'),
            encoding: 'base64',
          },
          { name: 'util.py', path: 'lib/util.py', content: 'x = 1', encoding: 'utf8' },
        ],
        config_data: { param1: 'value1', param2: 42 },
      },
      LIMITS,
    );
    const read = (p: string) => readFileSync(path.join(ws, p));
    t.same(JSON.parse(read('input/graph_data.json').toString()), { nodes: [{ id: '1' }], relationships: [] });
    t.equal(read('input/script.py').toString(), 'print("hé")\n');
    t.same(read('input/lib/deep/blob.bin'), binary);
    t.equal(read('input/lib/util.py').toString(), 'x = 1');
    t.same(JSON.parse(read('config/config.json').toString()), { param1: 'value1', param2: 42 });
    const expected =
      Buffer.byteLength(JSON.stringify({ nodes: [{ id: '1' }], relationships: [] })) +
      Buffer.byteLength('print("hé")\n') +
      binary.length +
      5 +
      Buffer.byteLength(JSON.stringify({ param1: 'value1', param2: 42 }));
    t.equal(bytes, expected);
    for (const f of [
      'input/graph_data.json',
      'input/script.py',
      'input/lib/deep/blob.bin',
      'config/config.json',
    ])
      t.equal(statSync(path.join(ws, f)).mode & 0o777, 0o644, `${f} is 0644 despite umask 077`);
    for (const d of ['input/lib', 'input/lib/deep'])
      t.equal(statSync(path.join(ws, d)).mode & 0o777, 0o755, `${d} is 0755 despite umask 077`);
  },
);

t.test('writeInputs checks again and never writes through a symlink', async (t) => {
  const ws = workspace(t);
  const elsewhere = tempDir(t, 'elsewhere');
  // What a route that forgot to check, or a forged job in Redis, would carry.
  await t.rejects(writeInputs(ws, { files: [file('../output/x')] }, LIMITS), ValidationError);
  t.same(readdirSync(path.join(ws, 'output')), []);
  await t.rejects(writeInputs(ws, { files: [file('a', 'x'.repeat(2000))] }, LIMITS), TooLargeError);

  symlinkSync(elsewhere, path.join(ws, 'input', 'sub'));
  await t.rejects(writeInputs(ws, { files: [file('sub/x.txt')] }, LIMITS), {
    message: '"/workspace/input/sub" is not a directory (or is a symlink).',
  });
  writeFileSync(path.join(elsewhere, 'target'), 'mine');
  symlinkSync(path.join(elsewhere, 'target'), path.join(ws, 'input', 'x.txt'));
  await t.rejects(writeInputs(ws, { files: [file('x.txt', 'theirs')] }, LIMITS), {
    message: 'File "x.txt" could not be written under /workspace/input (EEXIST).',
  });
  t.same(readdirSync(elsewhere).sort(), ['target'], 'nothing written in the symlinked directory');
  t.equal(readFileSync(path.join(elsewhere, 'target'), 'utf8'), 'mine', 'the symlink target is untouched');

  const ws2 = tempDir(t, 'workspace');
  mkdirSync(path.join(ws2, 'config'));
  symlinkSync(elsewhere, path.join(ws2, 'input'));
  await t.rejects(writeInputs(ws2, { files: [file('y.txt')] }, LIMITS), {
    message: '/workspace/input is not a directory (or is a symlink).',
  });
  t.notOk(readdirSync(elsewhere).includes('y.txt'));
});

t.test('writeInputs refuses MinIO objects when MinIO is not configured, naming MINIO_ENDPOINT', async (t) => {
  const ws = workspace(t);
  await t.rejects(
    writeInputs(ws, { minio_objects: [{ object_name: 'data/in.csv', local_path: 'in.csv' }] }, LIMITS),
    { code: 'minio_not_configured', field: 'input.minio_objects', message: /MINIO_ENDPOINT/ },
  );
  t.same(readdirSync(path.join(ws, 'input')), []);
});

t.test('createMinioClient: host:port or a URL, nothing contacted, bad values named', async (t) => {
  t.equal(createMinioClient({}), undefined, 'no endpoint, no client');
  const plain = createMinioClient({
    endpoint: 'localhost:9000',
    bucket: 'b',
    accessKey: 'k',
    secretKey: 's',
  });
  const internals = (c: unknown) => c as { host: string; port: number; protocol: string };
  t.match(internals(plain?.client), { host: 'localhost', port: 9000, protocol: 'http:' });
  t.equal(plain?.bucket, 'b');
  const tls = createMinioClient({ endpoint: 'https://minio.internal:9443', bucket: 'b' });
  t.match(internals(tls?.client), { host: 'minio.internal', port: 9443, protocol: 'https:' });
  const url = createMinioClient({ endpoint: 'http://127.0.0.1:9000/', bucket: 'b' });
  t.match(internals(url?.client), { host: '127.0.0.1', port: 9000, protocol: 'http:' });
  t.throws(() => createMinioClient({ endpoint: 'localhost:9000' }), ConfigError, 'no bucket');
  for (const endpoint of ['ftp://host:21', 'http://host:9000/path', 'http://user:pw@host:9000', 'http://']) {
    const err = caught(t, () => createMinioClient({ endpoint, bucket: 'b' }));
    t.type(err, ConfigError, endpoint);
    t.equal((err as ConfigError).field, 'MINIO_ENDPOINT');
    t.notMatch(err.message, /pw/, 'the endpoint is not echoed');
  }
});

t.test('collectOutputs returns text as is and binary as base64', async (t) => {
  const ws = workspace(t);
  const out = (p: string) => path.join(ws, 'output', p);
  writeFileSync(out('results.json'), '{"ok":true}');
  writeFileSync(out('image.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]));
  mkdirSync(out('nested'));
  writeFileSync(out('nested/summary.csv'), 'a,b\n1,2\n');
  writeFileSync(out('empty.txt'), '');
  const got = await collectOutputs(
    ws,
    { expected_files: ['results.json', 'image.bin', 'nested/summary.csv', 'empty.txt', 'absent.txt'] },
    { maxOutputFileBytes: 1024 },
  );
  t.same(got.output_files, [
    { name: 'results.json', path: '/workspace/output/results.json', content: '{"ok":true}', size: 11 },
    {
      name: 'image.bin',
      path: '/workspace/output/image.bin',
      content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]).toString('base64'),
      size: 6,
      encoding: 'base64',
    },
    {
      name: 'nested/summary.csv',
      path: '/workspace/output/nested/summary.csv',
      content: 'a,b\n1,2\n',
      size: 8,
    },
    { name: 'empty.txt', path: '/workspace/output/empty.txt', content: '', size: 0 },
  ]);
  t.same(got.missing, ['absent.txt']);
  t.same(got.problems, [{ name: 'absent.txt', reason: 'not found' }]);
  t.equal(got.graph_update, null);
  t.equal(got.graphUpdateError, undefined);
});

t.test('collectOutputs treats the output tree as hostile', async (t) => {
  const ws = workspace(t);
  const out = (p: string) => path.join(ws, 'output', p);
  symlinkSync('/etc/passwd', out('passwd'));
  symlinkSync('/etc', out('etc'));
  symlinkSync(path.join(ws, 'input'), out('inputs'));
  writeFileSync(path.join(ws, 'input', 'secret'), 'not for output');
  mkdirSync(out('adir'));
  execFileSync('mkfifo', [out('fifo')]);
  writeFileSync(out('big.txt'), 'x'.repeat(11));
  writeFileSync(out('ten.txt'), 'x'.repeat(10));
  let device = false;
  try {
    execFileSync('mknod', [out('null'), 'c', '1', '3'], { stdio: 'ignore' });
    device = true;
  } catch {
    // Not root, or no CAP_MKNOD: the device case is not tried.
  }
  const expected = [
    'passwd',
    'etc',
    'etc/passwd',
    'inputs/secret',
    'adir',
    'fifo',
    'big.txt',
    'ten.txt',
    '../input/secret',
    '/etc/passwd',
    ...(device ? ['null'] : []),
  ];
  const got = await collectOutputs(ws, { expected_files: expected }, { maxOutputFileBytes: 10 });
  t.same(
    got.output_files.map((f) => f.name),
    ['ten.txt'],
    'only the regular file under the cap',
  );
  t.notOk(
    got.output_files.some((f) => f.content.includes('root:') || f.content.includes('not for output')),
    'nothing behind a symlink was read',
  );
  const reasons = Object.fromEntries(got.problems.map((p) => [p.name, p.reason]));
  t.same(
    got.missing,
    expected.filter((n) => n !== 'ten.txt'),
  );
  t.equal(reasons.passwd, 'not a regular file (a symlink)');
  t.equal(reasons.etc, 'not a regular file (a symlink)');
  t.equal(reasons['etc/passwd'], 'a symlink on its path');
  t.equal(reasons['inputs/secret'], 'a symlink on its path');
  t.equal(reasons.adir, 'not a regular file (a directory)');
  t.equal(reasons.fifo, 'not a regular file (a special file)');
  t.equal(reasons['big.txt'], 'larger than 10 bytes (11)');
  t.equal(reasons['../input/secret'], 'File "../input/secret" would be read outside /workspace/output.');
  t.equal(reasons['/etc/passwd'], 'File "/etc/passwd" would be read outside /workspace/output.');
  if (device) t.equal(reasons.null, 'not a regular file (a special file)');
  t.ok(lstatSync(out('fifo')).isFIFO(), 'the FIFO is still there, never opened');
});

t.test('collectOutputs: output/ itself replaced by a symlink is not followed', async (t) => {
  const ws = tempDir(t, 'workspace');
  mkdirSync(path.join(ws, 'input'));
  symlinkSync('/etc', path.join(ws, 'output'));
  const got = await collectOutputs(
    ws,
    { expected_files: ['passwd'], graph_update: true },
    { maxOutputFileBytes: 1e6 },
  );
  t.same(got.output_files, []);
  t.same(got.problems, [{ name: 'passwd', reason: 'output/ is not a directory' }]);
  t.equal(got.graph_update, null);
  t.match(got.graphUpdateError, /not a directory/);
});

t.test('collectOutputs: a limit on all returned files together', async (t) => {
  const ws = workspace(t);
  for (const n of ['a', 'b', 'c']) writeFileSync(path.join(ws, 'output', n), '12345');
  const got = await collectOutputs(
    ws,
    { expected_files: ['a', 'b', 'c', 'a'] },
    { maxOutputFileBytes: 10, maxOutputBytes: 12 },
  );
  t.same(
    got.output_files.map((f) => f.name),
    ['a', 'b'],
    'a name asked twice is returned once',
  );
  t.same(got.problems, [{ name: 'c', reason: 'the files returned would pass 12 bytes in all' }]);
});

t.test('collectOutputs: graph_update.json valid, invalid, absent, a symlink, too large', async (t) => {
  const collect = async (t: Test, setup: (file: string) => void, limits = { maxOutputFileBytes: 1024 }) => {
    const ws = workspace(t);
    setup(path.join(ws, 'output', 'graph_update.json'));
    return collectOutputs(ws, { graph_update: true }, limits);
  };
  let got = await collect(t, (f) => writeFileSync(f, '{"nodes":[{"id":"n1"}],"relationships":[]}'));
  t.same(got.graph_update, { nodes: [{ id: 'n1' }], relationships: [] });
  t.equal(got.graphUpdateError, undefined);

  got = await collect(t, (f) => writeFileSync(f, '{"nodes": [oops'));
  t.equal(got.graph_update, null);
  t.equal(got.graphUpdateError, 'output/graph_update.json is not valid JSON.');

  got = await collect(t, () => {});
  t.equal(got.graph_update, null);
  t.equal(got.graphUpdateError, undefined, 'not writing one is not an error');

  got = await collect(t, (f) => symlinkSync('/etc/passwd', f));
  t.equal(got.graph_update, null);
  t.match(got.graphUpdateError, /symlink/);

  got = await collect(t, (f) => writeFileSync(f, JSON.stringify({ pad: 'x'.repeat(100) })), {
    maxOutputFileBytes: 50,
  });
  t.equal(got.graph_update, null);
  t.match(got.graphUpdateError, /larger than 50 bytes/);

  const ws = workspace(t);
  writeFileSync(path.join(ws, 'output', 'graph_update.json'), '{}');
  got = await collectOutputs(ws, { expected_files: [] }, { maxOutputFileBytes: 1024 });
  t.equal(got.graph_update, null, 'not read unless asked for');
});

t.test('checkOutputPaths refuses expected files outside output/', async (t) => {
  const err = caught(t, () => checkOutputPaths({ expected_files: ['ok.json', '../input/script.py'] }));
  t.type(err, ValidationError);
  t.equal((err as ValidationError).field, 'output.expected_files[1]');
  t.equal(err.message, 'File "../input/script.py" would be read outside /workspace/output.');
  t.doesNotThrow(() => checkOutputPaths({ expected_files: ['a/b.json'] }));
  t.doesNotThrow(() => checkOutputPaths(undefined));
});
