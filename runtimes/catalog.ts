/** The runtimes functions can use: the image (built locally, or a user's own) and its bootstrap. */
export const RUNTIME_NAMES = ['node20', 'python3'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface RuntimeDef {
  name: RuntimeName;
  image: string;
  cmd: string[];
}

export function runtimeCatalog(images: Record<RuntimeName, string>): Record<RuntimeName, RuntimeDef> {
  return {
    node20: { name: 'node20', image: images.node20, cmd: ['/usr/bin/node', '/opt/dockhand/bootstrap.mjs'] },
    python3: {
      name: 'python3',
      image: images.python3,
      cmd: ['/usr/bin/python3', '-u', '/opt/dockhand/bootstrap.py'],
    },
  };
}
