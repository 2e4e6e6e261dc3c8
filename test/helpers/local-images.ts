import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Images for exec tests, made from this machine's own binaries since no registry is reachable:
 * `FROM scratch`, the binaries and the libraries ldd names, nothing else (no shell, no libc
 * beyond what they link). Rebuilt only when the spec changes (label dockhand.test-image).
 */
export interface LocalImage {
  tag: string;
  /** Host paths, copied to the same paths (symlinks resolved). */
  binaries: string[];
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
}

export function buildLocalImage(image: LocalImage): string {
  const sum = createHash('sha256').update(JSON.stringify(image)).digest('hex').slice(0, 16);
  const have = (() => {
    try {
      return execFileSync(
        'docker',
        ['image', 'inspect', '-f', '{{ index .Config.Labels "dockhand.test-image" }}', image.tag],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      ).trim();
    } catch {
      return '';
    }
  })();
  if (have === sum) return image.tag;
  // Not a test temp dir (the leak check's prefix): removed here, built outside any test.
  const ctx = mkdtempSync(path.join(tmpdir(), 'dockhand-image-'));
  try {
    const root = path.join(ctx, 'rootfs');
    const copy = (file: string) => {
      const dest = path.join(root, file);
      if (existsSync(dest)) return;
      mkdirSync(path.dirname(dest), { recursive: true });
      copyFileSync(file, dest);
    };
    for (const bin of image.binaries) {
      copy(bin);
      const ldd = (() => {
        try {
          return execFileSync('ldd', [bin], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        } catch {
          return ''; // static: nothing to add
        }
      })();
      for (const lib of ldd.match(/\/[^ \n]+/g) ?? []) copy(lib);
    }
    mkdirSync(path.join(root, 'tmp'), { recursive: true });
    const lines = [
      'FROM scratch',
      'COPY rootfs/ /',
      ...(image.env
        ? [
            `ENV ${Object.entries(image.env)
              .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
              .join(' ')}`,
          ]
        : []),
      ...(image.entrypoint ? [`ENTRYPOINT ${JSON.stringify(image.entrypoint)}`] : []),
      ...(image.cmd ? [`CMD ${JSON.stringify(image.cmd)}`] : []),
      `LABEL dockhand.test-image="${sum}"`,
    ];
    writeFileSync(path.join(ctx, 'Dockerfile'), `${lines.join('\n')}\n`);
    execFileSync('docker', ['build', '-q', '-t', image.tag, ctx], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return image.tag;
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Coreutils only (echo, sleep, true, …): no shell, no interpreter. */
export const coreutilsImage = (): string =>
  buildLocalImage({
    tag: 'dockhand-test-coreutils:local',
    binaries: [
      '/usr/bin/echo',
      '/usr/bin/sleep',
      '/usr/bin/true',
      '/usr/bin/false',
      '/usr/bin/env',
      '/usr/bin/pwd',
      '/usr/bin/id',
    ],
    cmd: ['/usr/bin/echo', 'default', 'cmd'],
    env: { PATH: '/usr/bin' },
  });

/** An image whose ENTRYPOINT takes the command as its arguments, as many published images do. */
export const entrypointImage = (): string =>
  buildLocalImage({
    tag: 'dockhand-test-entrypoint:local',
    binaries: ['/usr/bin/echo'],
    entrypoint: ['/usr/bin/echo', 'entrypoint'],
    cmd: ['from', 'cmd'],
  });
