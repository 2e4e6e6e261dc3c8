import type { Runner } from '../../runtimes/guarded-bridge.ts';

/**
 * A Runner that records every command (stdin after `<<`) and answers -S, -C, -I and -D as
 * iptables would, knowing the given chains and the jumps inserted so far; a command containing
 * `failOn` fails as an unprivileged iptables does.
 */
export function fakeIptables(chains: string[], failOn?: string) {
  const calls: string[] = [];
  const jumps = new Set<string>();
  const run: Runner = async (cmd, args, input) => {
    const line = [cmd, ...args].join(' ');
    calls.push(input ? `${line} <<${input}` : line);
    if (failOn && line.includes(failOn)) throw new Error(`${cmd}: Permission denied (you must be root)`);
    const [, op, chain] = args;
    const rest = [cmd, ...args.slice(2)].join(' ');
    if (op === '-S') {
      if (!chains.includes(chain as string)) throw new Error('No chain/target/match by that name.');
    } else if (op === '-C') {
      if (!jumps.has(rest)) throw new Error('Bad rule (does a matching rule exist in that chain?)');
    } else if (op === '-I') jumps.add(rest);
    else if (op === '-D' && !jumps.delete(rest)) throw new Error('Bad rule');
    return '';
  };
  return { calls, run };
}
