import t from 'tap';
import { nodeStatus } from '../../api/nodes/node-store.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const seen = 1_000_000;
const working = { eligible: true, drain: false };
const at = (seconds: number) => seen + seconds * 1000;

t.test('offline after three missed intervals, whatever else holds', async (t) => {
  t.equal(nodeStatus({ lastSeen: seen, desired: working }, at(0), 30), 'online');
  t.equal(nodeStatus({ lastSeen: seen, desired: working }, at(90), 30), 'online', 'three intervals exactly');
  t.equal(nodeStatus({ lastSeen: seen, desired: working }, at(90.001), 30), 'offline');
  t.equal(
    nodeStatus({ lastSeen: seen, desired: working }, at(16), 5),
    'offline',
    'in the configured interval',
  );
  for (const desired of [
    { eligible: false, drain: true },
    { eligible: false, drain: false },
  ])
    for (const reported of ['active', 'draining', 'drained', 'ineligible'] as const)
      t.equal(nodeStatus({ lastSeen: seen, desired, reported }, at(91), 30), 'offline');
});

t.test('a drain shows as draining until the node reports drained', async (t) => {
  const drain = { eligible: false, drain: true };
  t.equal(
    nodeStatus({ lastSeen: seen, desired: drain }, at(1), 30),
    'draining',
    'an agent that reports nothing',
  );
  t.equal(nodeStatus({ lastSeen: seen, desired: drain, reported: 'active' }, at(1), 30), 'draining');
  t.equal(nodeStatus({ lastSeen: seen, desired: drain, reported: 'draining' }, at(1), 30), 'draining');
  t.equal(nodeStatus({ lastSeen: seen, desired: drain, reported: 'drained' }, at(1), 30), 'drained');
  // Resumed by the operator: drained until the node says it works again.
  t.equal(nodeStatus({ lastSeen: seen, desired: working, reported: 'drained' }, at(1), 30), 'drained');
  t.equal(nodeStatus({ lastSeen: seen, desired: working, reported: 'active' }, at(1), 30), 'online');
  t.equal(nodeStatus({ lastSeen: seen, desired: working, reported: 'draining' }, at(1), 30), 'draining');
});

t.test('ineligible by the operator or by the node itself', async (t) => {
  const out = { eligible: false, drain: false };
  t.equal(nodeStatus({ lastSeen: seen, desired: out }, at(1), 30), 'ineligible');
  t.equal(nodeStatus({ lastSeen: seen, desired: out, reported: 'active' }, at(1), 30), 'ineligible');
  t.equal(nodeStatus({ lastSeen: seen, desired: working, reported: 'ineligible' }, at(1), 30), 'ineligible');
});
