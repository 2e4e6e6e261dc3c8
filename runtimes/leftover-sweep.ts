import type Docker from 'dockerode';
import { removeLeftoverContainers } from './docker-sandbox.ts';
import { removeLeftoverWorkspaces } from './exec-workspace.ts';

export interface LeftoverSweepOptions {
  docker: Docker;
  /** `host/pid` of this process: what it owns is never touched here, only dead owners' things. */
  owner: string;
  /** Where exec workspaces are made (DATA_DIR/exec); a dead owner's go once its containers have. */
  workspaceDir?: string;
  intervalMs: number;
  /** Something was removed: how many containers and workspaces. */
  onRemoved?: (removed: { containers: number; workspaces: number }) => void;
  /** A sweep failed (Docker away); the next one tries again. */
  onError?: (err: unknown) => void;
}

/**
 * What a worker killed without a word (SIGKILL, OOM) leaves on its host, its warm and busy
 * containers and its exec workspaces, is removed by a surviving worker's next sweep, not only
 * when a replacement worker starts. A sweep is one label-filtered container list and one
 * directory read: cheap enough every few seconds. Owners are `host/pid`, so only processes on
 * this host are judged, by whether their pid still runs.
 */
export function startLeftoverSweep(options: LeftoverSweepOptions) {
  let running: Promise<void> | undefined;
  const sweep = (): Promise<void> => {
    running ??= (async () => {
      try {
        const containers = await removeLeftoverContainers(options.docker, options.owner);
        // Containers first: a workspace is removed only once nothing can write into it.
        const workspaces = options.workspaceDir
          ? await removeLeftoverWorkspaces(options.workspaceDir, options.owner, { own: false })
          : 0;
        if (containers + workspaces > 0) options.onRemoved?.({ containers, workspaces });
      } catch (err) {
        options.onError?.(err);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void sweep(), options.intervalMs).unref();
  return {
    /** Sweeps now (or joins the sweep under way). */
    sweep,
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
}
export type LeftoverSweep = ReturnType<typeof startLeftoverSweep>;
