import { useEffect, useRef } from 'preact/hooks';
import uPlot, { type AlignedData, type Options } from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A uPlot chart that follows its container's width. `build` makes the options for a width;
 * data changes only call setData. The canvas is hidden from assistive tech: every chart here
 * has the same numbers in a table or a sentence next to it (`summary`).
 */
export function UChart({
  build,
  data,
  height = 260,
  summary,
}: {
  build: (width: number, height: number) => Options;
  data: AlignedData;
  height?: number;
  summary: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const buildRef = useRef(build);
  buildRef.current = build;
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(280, el.clientWidth);
    plot.current = new uPlot(buildRef.current(width, height), data, el);
    const observer = new ResizeObserver(() => {
      const w = Math.max(280, el.clientWidth);
      if (plot.current && Math.abs(plot.current.width - w) > 2) plot.current.setSize({ width: w, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [height]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure class="chart">
      <div ref={box} class="chart-canvas" aria-hidden="true" />
      <figcaption class="visually-hidden">{summary}</figcaption>
    </figure>
  );
}

/** A tiny line (no axes) for a node's CPU or memory over its last heartbeats. */
export function Sparkline({ values, max = 100, label }: { values: number[]; max?: number; label: string }) {
  const w = 120;
  const h = 28;
  const points = values
    .map((v, i) => {
      const x = values.length < 2 ? w : (i / (values.length - 1)) * w;
      const y = h - (Math.max(0, Math.min(max, v)) / max) * (h - 2) - 1;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
  return (
    <svg class="sparkline" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
      <rect x="0" y="0" width={w} height={h} class="spark-bg" />
      {values.length > 0 ? <polyline points={points} class="spark-line" /> : null}
    </svg>
  );
}
