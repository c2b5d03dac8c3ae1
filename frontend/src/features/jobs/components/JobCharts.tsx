import { useMemo } from "react";
import { LineChart } from "@/components/charts/LineChart";
import { alignSeries, type MetricKey, type MetricPoint } from "@/lib/metrics";

const CHARTS: { title: string; keys: MetricKey[]; series: { label: string; color: string }[] }[] = [
  { title: "Loss", keys: ["train_loss", "valid_loss"], series: [{ label: "train", color: "#2563eb" }, { label: "valid", color: "#f97316" }] },
  { title: "Learning rate", keys: ["learning_rate"], series: [{ label: "lr", color: "#10b981" }] },
  { title: "Gradient norm", keys: ["grad_norm"], series: [{ label: "grad norm", color: "#a855f7" }] },
  { title: "Throughput", keys: ["tokens_per_second"], series: [{ label: "tokens/s", color: "#0ea5e9" }] },
];

/** The four live charts of a job, fed by its event stream. */
export function JobCharts({ points, waiting }: { points: MetricPoint[]; waiting: string }) {
  const columns = useMemo(() => CHARTS.map((c) => alignSeries(points, c.keys)), [points]);
  return (
    <div className="charts">
      {CHARTS.map((c, i) => (
        <div key={c.title} className={i === 0 ? "chart-wide" : ""}>
          <LineChart title={c.title} series={c.series} data={columns[i]} height={i === 0 ? 240 : 150} emptyText={waiting} />
        </div>
      ))}
    </div>
  );
}
