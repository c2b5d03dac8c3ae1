// A streaming line chart on uPlot: the plot is created once and fed with setData() as points arrive,
// so a job that logs every step redraws a canvas instead of re-rendering thousands of SVG nodes.
import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatNumber } from "@/lib/format";

export interface ChartSeries {
  label: string;
  color: string;
  dash?: number[];
}

export interface LineChartProps {
  title: string;
  series: ChartSeries[];
  /** uPlot aligned data: x values (steps), then one column per series; null where a series has no value. */
  data: (number | null)[][];
  height?: number;
  xLabel?: string;
  emptyText?: string;
}

const FALLBACK_WIDTH = 480;
// Steps are whole numbers: never put a tick at step 1.25.
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];

function lastValue(column: (number | null)[] | undefined): number | null {
  if (!column) return null;
  for (let i = column.length - 1; i >= 0; i -= 1) if (column[i] != null) return column[i];
  return null;
}

export function LineChart({ title, series, data, height = 200, xLabel = "step", emptyText }: LineChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const points = data[0]?.length ?? 0;
  const shape = useMemo(() => JSON.stringify(series), [series]);

  // Create the plot when the set of series changes; data changes go through setData below.
  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const width = el.clientWidth || FALLBACK_WIDTH;
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false } },
      axes: [
        { label: xLabel, stroke: "#5b6472", grid: { stroke: "#eef0f3" }, size: 36, incrs: STEP_INCREMENTS },
        { stroke: "#5b6472", grid: { stroke: "#eef0f3" }, size: 64, values: (_u, ticks) => ticks.map((t) => formatNumber(t, 3)) },
      ],
      series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash, spanGaps: true, points: { show: false } }))],
    };
    const chart = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = chart;
    let observer: ResizeObserver | undefined;
    if (typeof ResizeObserver !== "undefined") {
      observer = new ResizeObserver(() => {
        const w = el.clientWidth;
        if (w > 0 && w !== chart.width) chart.setSize({ width: w, height });
      });
      observer.observe(el);
    }
    return () => {
      observer?.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- data is fed by the effect below
  }, [shape, height, xLabel]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData, true);
  }, [data]);

  return (
    <figure className="chart" data-testid={`chart-${title}`} data-points={points}>
      <figcaption className="chart-head">
        <span className="chart-title">{title}</span>
        <span className="chart-legend">
          {series.map((s, i) => (points > 0 && lastValue(data[i + 1]) === null ? null :
            <span key={s.label} className="chart-legend-item">
              <i style={{ background: s.color }} aria-hidden="true" />
              {s.label} <b>{formatNumber(lastValue(data[i + 1]))}</b>
            </span>
          ))}
        </span>
      </figcaption>
      <div className="chart-body" style={{ minHeight: height }}>
        <div className="chart-plot" ref={holder} />
        {points === 0 && <div className="chart-empty">{emptyText ?? "Waiting for the first points…"}</div>}
      </div>
    </figure>
  );
}
