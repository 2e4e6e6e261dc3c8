/** The runtimes functions can use: the image (built locally, or a user's own) and its bootstrap. */
export const RUNTIME_NAMES = ['node20', 'python3', 'provided'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface RuntimeDef {
  name: RuntimeName;
  image: string;
  cmd: string[];
  /**
   * The function's own programs run from /tmp (its tmpfs is otherwise noexec): a custom
   * runtime's `bootstrap` is an executable in the function's code. Default false.
   */
  tmpfsExec?: boolean;
}

export function runtimeCatalog(images: Record<RuntimeName, string>): Record<RuntimeName, RuntimeDef> {
  return {
    node20: { name: 'node20', image: images.node20, cmd: ['/usr/bin/node', '/opt/dockhand/bootstrap.mjs'] },
    python3: {
      name: 'python3',
      image: images.python3,
      cmd: ['/usr/bin/python3', '-u', '/opt/dockhand/bootstrap.py'],
    },
    // Node serves the Lambda Runtime API on loopback to the function's own `bootstrap`.
    provided: {
      name: 'provided',
      image: images.provided,
      cmd: ['/usr/bin/node', '/opt/dockhand/bootstrap.mjs'],
      tmpfsExec: true,
    },
  };
}
