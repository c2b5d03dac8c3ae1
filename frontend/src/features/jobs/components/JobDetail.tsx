import { Link } from "react-router";
import type { Job } from "@/api/client";
import { isActive, useJob } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { JsonView } from "@/components/JsonView";
import { ProgressBar } from "@/components/ProgressBar";
import { StatusBadge } from "@/components/StatusBadge";
import { formatCount, formatTime } from "@/lib/format";
import { useJobStream } from "../api/stream";
import { TUNING_LABEL } from "../form/tuningFields";
import { CheckpointsTable } from "./CheckpointsTable";
import { EventLog } from "./EventLog";
import { JobCharts } from "./JobCharts";
import { JobControls } from "./JobControls";
import { jobMethod, jobRank, jobTuningType } from "./JobsTable";

function waitingText(job: Job): string {
  if (job.status === "queued") return job.queue_position ? `Queued (#${job.queue_position}); waiting for a worker…` : "Queued; waiting for a worker…";
  if (job.status === "validating_files") return "Validating files…";
  if (job.status === "running") return "Loading the model; the first step is on its way…";
  return "No metrics were recorded.";
}

function Outcome({ job }: { job: Job }) {
  if (job.status === "failed" && job.error) {
    return <div className="banner banner-error" role="alert"><strong>Failed ({job.error.code}):</strong> {job.error.message}</div>;
  }
  if (job.status !== "succeeded") return null;
  const model = job.fine_tuned_model;
  const name = typeof job.adapter?.name === "string" ? job.adapter.name : model?.split(/[:@]/)[0];
  return (
    <div className="banner banner-ok" role="status">
      <strong>Done.</strong> {model ? <>The adapter is <code>{model}</code>. </> : null}
      {name && <Link to={`/registry/${encodeURIComponent(name)}`}>Open it in the registry</Link>}
      {model && <> · <Link to={`/playground?model=${encodeURIComponent(model)}`}>Chat with it</Link></>}
    </div>
  );
}

export function JobDetail({ id }: { id: string }) {
  const job = useJob(id);
  const stream = useJobStream(id);
  if (job.isError) return <ErrorBanner error={job.error} title="Job" />;
  if (job.isPending) return <p className="muted">Loading job…</p>;
  const j = job.data;
  const live = isActive(j);
  const type = jobTuningType(j);
  return (
    <div className="job-detail">
      <div className="page-head">
        <div>
          <h1>{j.suffix || j.id} <StatusBadge status={j.status} /></h1>
          <p className="muted">
            <code>{j.id}</code> · {j.model} · {TUNING_LABEL[type as keyof typeof TUNING_LABEL] ?? type}
            {jobRank(j) != null && <> r={jobRank(j)}</>} · {jobMethod(j)} · created {formatTime(j.created_at)}
            {j.trainable_params != null && <> · {formatCount(j.trainable_params)} trainable parameters</>}
          </p>
        </div>
        <JobControls job={j} />
      </div>
      <Outcome job={j} />
      <div className="progress-row">
        <ProgressBar step={Math.max(j.progress.step, stream.points.at(-1)?.step ?? 0)} total={j.progress.total_steps ?? stream.points.at(-1)?.total_steps}
                     etaSeconds={j.progress.eta_seconds} />
        <span className={`stream-state ${stream.connected ? "on" : ""}`} title="Live event stream">
          {stream.connected ? "● live" : stream.error ? `○ stream ended: ${stream.error}` : live ? "○ reconnecting…" : "○ stream closed"}
        </span>
      </div>
      <JobCharts points={stream.points} waiting={waitingText(j)} />
      <div className="two-col">
        <section className="panel">
          <h3>Event log</h3>
          <EventLog events={stream.log} />
        </section>
        <section className="panel">
          <h3>Checkpoints</h3>
          <CheckpointsTable jobId={j.id} live={live} />
        </section>
      </div>
      <section className="panel">
        <h3>Spec</h3>
        <JsonView label="Job spec" value={{ model: j.model, training_file: j.training_file, validation_file: j.validation_file,
          suffix: j.suffix, seed: j.seed, method: j.method, hyperparameters: j.hyperparameters, tuning: j.tuning, training: j.training }} />
      </section>
    </div>
  );
}
