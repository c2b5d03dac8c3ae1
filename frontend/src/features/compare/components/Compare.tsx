import { useMemo, useState } from "react";
import type { Job } from "@/api/client";
import { isActive, useJobs } from "@/api/queries";
import { LineChart } from "@/components/charts/LineChart";
import { ErrorBanner } from "@/components/ErrorBanner";
import { StatusBadge } from "@/components/StatusBadge";
import { METRIC_KEYS, type MetricKey, type MetricPoint } from "@/lib/metrics";
import { useRunMetrics } from "../api/hooks";
import { diffRows, flatten } from "./configDiff";
import { runLabels } from "./runLabels";

const COLORS = ["#2563eb", "#f97316", "#10b981", "#a855f7", "#ef4444", "#0ea5e9", "#eab308", "#64748b"];
const METRIC_LABEL: Record<MetricKey, string> = {
  train_loss: "train loss", valid_loss: "valid loss", learning_rate: "learning rate", grad_norm: "grad norm", tokens_per_second: "tokens/s",
};

/** Overlays several runs' curves on one set of steps (null where a run has no point). */
export function overlay(runs: MetricPoint[][], key: MetricKey): (number | null)[][] {
  const steps = [...new Set(runs.flatMap((points) => points.filter((p) => p[key] !== undefined).map((p) => p.step)))].sort((a, b) => a - b);
  const byStep = runs.map((points) => new Map(points.map((p) => [p.step, p[key]])));
  return [steps, ...byStep.map((m) => steps.map((s) => m.get(s) ?? null))];
}

function configOf(job: Job) {
  return { model: job.model, training_file: job.training_file, method: job.method, tuning: job.tuning, training: job.training, seed: job.seed };
}

export function Compare({ selected, onSelect }: { selected: string[]; onSelect: (ids: string[]) => void }) {
  const jobs = useJobs();
  const [metric, setMetric] = useState<MetricKey>("train_loss");
  const [onlyDifferent, setOnlyDifferent] = useState(true);
  const all = jobs.data?.data ?? [];
  const runs = selected.map((id) => all.find((j) => j.id === id)).filter((j): j is Job => !!j);
  const live = useMemo(() => new Set(runs.filter(isActive).map((j) => j.id)), [runs]);
  const metrics = useRunMetrics(runs.map((j) => j.id), live);
  const pointsKey = metrics.map((m) => m.dataUpdatedAt).join(",");
  // eslint-disable-next-line react-hooks/exhaustive-deps -- recomputed when any run's data changes
  const data = useMemo(() => overlay(metrics.map((m) => m.data ?? []), metric), [pointsKey, metric, runs.length]);
  const labels = runLabels(all);
  const runName = (job: Job) => labels.get(job.id) ?? job.id;
  const series = runs.map((j, i) => ({ label: runName(j), color: COLORS[i % COLORS.length] }));
  const rows = diffRows(runs.map((j) => flatten(configOf(j))), onlyDifferent);
  const toggle = (id: string) => onSelect(selected.includes(id) ? selected.filter((s) => s !== id) : [...selected, id]);

  return (
    <div className="compare">
      <ErrorBanner error={jobs.error} title="Jobs" />
      <section className="panel" aria-label="Runs">
        <h3>Runs</h3>
        {all.length === 0 && !jobs.isPending && <p className="muted">No jobs yet.</p>}
        <div className="run-picker">
          {all.map((job) => (
            <label key={job.id} className={selected.includes(job.id) ? "chip on" : "chip"}>
              <input type="checkbox" checked={selected.includes(job.id)} onChange={() => toggle(job.id)} />
              {runName(job)} <StatusBadge status={job.status} />
            </label>
          ))}
        </div>
      </section>
      {runs.length === 0 ? <p className="empty">Pick two or more runs to overlay their curves and diff their configs.</p> : (
        <>
          <section className="panel">
            <div className="panel-head">
              <h3>Curves</h3>
              <select aria-label="Metric" value={metric} onChange={(e) => setMetric(e.target.value as MetricKey)}>
                {METRIC_KEYS.map((k) => <option key={k} value={k}>{METRIC_LABEL[k]}</option>)}
              </select>
            </div>
            <LineChart title={METRIC_LABEL[metric]} series={series} data={data} height={280} emptyText="These runs have no points for this metric." />
          </section>
          <section className="panel">
            <div className="panel-head">
              <h3>Config diff</h3>
              <label className="small"><input type="checkbox" checked={onlyDifferent} onChange={(e) => setOnlyDifferent(e.target.checked)} /> only differences</label>
            </div>
            <table className="table compact diff" aria-label="Config diff">
              <thead><tr><th>Field</th>{runs.map((j, i) => <th key={j.id} style={{ color: COLORS[i % COLORS.length] }}>{runName(j)}</th>)}</tr></thead>
              <tbody>
                {rows.length === 0 && <tr><td colSpan={runs.length + 1} className="muted">The configs are identical.</td></tr>}
                {rows.map((row) => (
                  <tr key={row.key} className={row.differs ? "differs" : ""}>
                    <td><code>{row.key}</code></td>
                    {row.values.map((v, i) => <td key={i}>{v}</td>)}
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      )}
    </div>
  );
}
