import t from 'tap';
import { createProgressMarks } from '../../processors/progress-marks.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

function fakeJob() {
  const written: number[] = [];
  return {
    written,
    job: {
      updateProgress: async (value: number | object) => {
        written.push(value as number);
      },
    },
  };
}

t.test('a job over before the first mark is due writes no progress', async (t) => {
  const { job, written } = fakeJob();
  const progress = createProgressMarks(job, { firstAfterMs: 60_000 });
  progress.set(10);
  progress.set(55);
  progress.stop();
  progress.set(90);
  t.same(written, [], 'not one write for a quick job');
});

t.test('once due, the latest value is written, then at most one per interval', async (t) => {
  const { job, written } = fakeJob();
  const progress = createProgressMarks(job, { firstAfterMs: 0, everyMs: 60_000 });
  progress.set(10);
  progress.set(20);
  await waitFor(() => written.length === 1, { what: 'the first mark' });
  t.same(written, [20], 'the latest value, once');
  progress.set(30);
  progress.set(40);
  progress.stop();
  t.same(written, [20], 'the next is held for the interval, and dropped at stop');
});

t.test('with no interval, each new value is written in turn', async (t) => {
  const { job, written } = fakeJob();
  const progress = createProgressMarks(job, { firstAfterMs: 0, everyMs: 0 });
  progress.set(10);
  await waitFor(() => written.length === 1, { what: 'the first mark' });
  progress.set(10);
  progress.set(70);
  await waitFor(() => written.length === 2, { what: 'the second mark' });
  progress.stop();
  t.same(written, [10, 70], 'an unchanged value is not written again');
});
