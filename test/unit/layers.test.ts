import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

// Bottom to top: a file may import from its own layer or any layer before it, never after.
const LAYERS = ['core', 'runtimes', 'queues', 'processors', 'api', 'roles', 'scripts'];
const root = path.resolve(import.meta.dirname, '../..');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return files(full);
    return /\.(ts|tsx|mjs|js)$/.test(entry.name) ? [full] : [];
  });
}

t.test(
  'imports run only downward: core → runtimes → queues → processors → api → roles → scripts',
  async (t) => {
    const upward: string[] = [];
    for (const layer of LAYERS) {
      for (const file of files(path.join(root, layer))) {
        const source = readFileSync(file, 'utf8');
        for (const match of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
          const target = path.relative(root, path.resolve(path.dirname(file), match[1] as string));
          const targetLayer = target.split(path.sep)[0] as string;
          if (LAYERS.indexOf(targetLayer) > LAYERS.indexOf(layer))
            upward.push(`${path.relative(root, file)} → ${target}`);
        }
      }
    }
    t.same(upward, [], 'no import from a lower layer to a higher one');
  },
);

t.test('the console (console/) talks HTTP only: it imports nothing outside its own folder', async (t) => {
  const outside: string[] = [];
  const consoleDir = path.join(root, 'console');
  for (const file of files(consoleDir)) {
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.resolve(path.dirname(file), match[1] as string);
      if (!target.startsWith(`${consoleDir}${path.sep}`))
        outside.push(`${path.relative(root, file)} → ${path.relative(root, target)}`);
    }
  }
  t.same(outside, [], 'no import from console/ into the server');
});
