import type { Job } from "@/api/client";

const shortId = (job: Job) => job.id.replace(/^ftjob-/, "").slice(-6);

/** One label per run, unique among `jobs`: the registry's `name:version` once a run succeeded, else its suffix
 *  (or tuning type) with a short job id. Two versions of one adapter share a suffix, so the suffix alone made
 *  the legend and the diff columns say the same name twice. */
export function runLabels(jobs: Job[]): Map<string, string> {
  const labels = new Map(jobs.map((job) => [job.id, job.fine_tuned_model
    ?? `${job.suffix || job.tuning?.type || "run"} · ${shortId(job)}`]));
  const seen = new Map<string, number>();
  for (const label of labels.values()) seen.set(label, (seen.get(label) ?? 0) + 1);
  for (const job of jobs) {
    const label = labels.get(job.id)!;
    if ((seen.get(label) ?? 0) > 1) labels.set(job.id, `${label} · ${job.id}`);
  }
  return labels;
}
