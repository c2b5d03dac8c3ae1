import { useMemo, useState } from "react";
import { Link, useNavigate } from "react-router";
import type { Job } from "@/api/client";
import { useJobs } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { ProgressBar } from "@/components/ProgressBar";
import { StatusBadge } from "@/components/StatusBadge";
import { formatTime } from "@/lib/format";
import { TUNING_LABEL } from "../form/tuningFields";

const STATUSES = ["", "queued", "running", "paused", "succeeded", "failed", "cancelled"];

export const jobMethod = (job: Job) => String(job.method?.type ?? "supervised");
export const jobTuningType = (job: Job) => String(job.tuning?.type ?? "lora");
export const jobRank = (job: Job) => (typeof job.tuning?.r === "number" ? job.tuning.r : null);

/** Every job with status, queue position and progress; filtered by status, method and text. */
export function JobsTable() {
  const [status, setStatus] = useState("");
  const [type, setType] = useState("");
  const [text, setText] = useState("");
  const jobs = useJobs({ status });
  const navigate = useNavigate();
  const rows = useMemo(() => (jobs.data?.data ?? []).filter((job) =>
    (!type || jobTuningType(job) === type)
    && (!text || `${job.id} ${job.model} ${job.suffix ?? ""} ${job.fine_tuned_model ?? ""}`.toLowerCase().includes(text.toLowerCase()))),
  [jobs.data, type, text]);
  const types = useMemo(() => [...new Set((jobs.data?.data ?? []).map(jobTuningType))].sort(), [jobs.data]);

  return (
    <section aria-label="Jobs">
      <div className="filters">
        <label>Status{" "}
          <select aria-label="Filter by status" value={status} onChange={(e) => setStatus(e.target.value)}>
            {STATUSES.map((s) => <option key={s} value={s}>{s || "any"}</option>)}
          </select>
        </label>
        <label>Method{" "}
          <select aria-label="Filter by method" value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">any</option>
            {types.map((t) => <option key={t} value={t}>{TUNING_LABEL[t as keyof typeof TUNING_LABEL] ?? t}</option>)}
          </select>
        </label>
        <input type="search" placeholder="Search id, model, name…" aria-label="Search jobs" value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      <ErrorBanner error={jobs.error} title="Jobs" />
      {jobs.isPending ? <p className="muted">Loading jobs…</p> : rows.length === 0 ? (
        <div className="empty">
          {jobs.data?.data.length ? <p>No job matches these filters.</p> : (
            <>
              <p><strong>No fine-tunes yet.</strong></p>
              <ol>
                <li><Link to="/datasets">Upload a dataset</Link> (try <code>examples/data/chat.jsonl</code>).</li>
                <li><Link to="/jobs/new">Start a fine-tune</Link>: pick the base model, the dataset and LoRA.</li>
                <li>Watch the loss here, then chat with the result in the <Link to="/playground">playground</Link>.</li>
              </ol>
            </>
          )}
        </div>
      ) : (
        <table className="table jobs" aria-label="Jobs table">
          <thead>
            <tr><th>Job</th><th>Status</th><th>Queue</th><th>Progress</th><th>Base model</th><th>Method</th><th className="num">r</th><th>Created</th></tr>
          </thead>
          <tbody>
            {rows.map((job) => (
              <tr key={job.id} className="clickable" onClick={() => navigate(`/jobs/${job.id}`)}>
                <td><Link to={`/jobs/${job.id}`} onClick={(e) => e.stopPropagation()}>{job.suffix || job.id}</Link>{job.suffix && <div className="muted small">{job.id}</div>}</td>
                <td><StatusBadge status={job.status} /></td>
                <td className="num">{job.queue_position ? `#${job.queue_position}` : "—"}</td>
                <td className="progress-cell"><ProgressBar compact step={job.progress.step} total={job.progress.total_steps} etaSeconds={job.progress.eta_seconds} /></td>
                <td>{job.model}</td>
                <td>{TUNING_LABEL[jobTuningType(job) as keyof typeof TUNING_LABEL] ?? jobTuningType(job)} <span className="muted small">{jobMethod(job)}</span></td>
                <td className="num">{jobRank(job) ?? "—"}</td>
                <td>{formatTime(job.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
