// Training metrics as chart points: one point per step, merged from `metrics` events. A step replayed by a
// later attempt (a run resumed from a checkpoint after its worker was lost) shows that attempt's values.
import { api, unwrap, type JobEvent } from "@/api/client";

export const METRIC_KEYS = ["train_loss", "valid_loss", "learning_rate", "grad_norm", "tokens_per_second"] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];
export type MetricPoint = { step: number; attempt?: number } & Partial<Record<MetricKey | "epoch" | "total_steps", number>>;

/** The metrics an event carries, or null for other events. */
export function metricPoint(event: Pick<JobEvent, "type" | "data"> & Partial<Pick<JobEvent, "attempt">>): MetricPoint | null {
  if (event.type !== "metrics" || !event.data) return null;
  const step = Number(event.data.step);
  if (!Number.isFinite(step)) return null;
  const point: MetricPoint = typeof event.attempt === "number" ? { step, attempt: event.attempt } : { step };
  for (const key of [...METRIC_KEYS, "epoch", "total_steps"] as const) {
    const value = event.data[key];
    if (typeof value === "number" && Number.isFinite(value)) point[key] = value;
  }
  return point;
}

/** Points merged by step, sorted by step: within an attempt a later event adds to or overrides an earlier
 * one; a later attempt's point replaces an older attempt's, and an older attempt's straggler is ignored. */
export function mergePoints(points: MetricPoint[], more: MetricPoint[]): MetricPoint[] {
  if (more.length === 0) return points;
  const byStep = new Map(points.map((p) => [p.step, p]));
  let sorted = true;
  let last = points.length ? points[points.length - 1].step : -Infinity;
  for (const p of more) {
    const existing = byStep.get(p.step);
    const older = (existing?.attempt ?? 0) - (p.attempt ?? 0);
    if (existing && older > 0) continue;
    byStep.set(p.step, existing && older === 0 ? { ...existing, ...p } : p);
    if (!existing) {
      if (p.step < last) sorted = false;
      last = Math.max(last, p.step);
    }
  }
  const merged = [...byStep.values()];
  return sorted ? merged : merged.sort((a, b) => a.step - b.step);
}

/** uPlot's aligned data: steps, then one column per key (null where a step has no value). */
export function alignSeries(points: MetricPoint[], keys: readonly MetricKey[]): (number | null)[][] {
  const rows = points.filter((p) => keys.some((k) => p[k] !== undefined));
  return [rows.map((p) => p.step), ...keys.map((k) => rows.map((p) => p[k] ?? null))];
}

/** Every event of a job, oldest first, following the `after` cursor page by page. */
export async function fetchAllEvents(jobId: string, signal?: AbortSignal): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await unwrap(api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}/events", {
      params: { path: { fine_tuning_job_id: jobId }, query: { after, limit: 100 } },
      signal,
    }));
    events.push(...page.data);
    if (!page.has_more || page.data.length === 0) return events;
    after = page.data[page.data.length - 1].id;
  }
}
