import type { Job } from "@/api/client";
import { ErrorBanner } from "@/components/ErrorBanner";
import { useCancelJob, usePauseJob, useResumeJob } from "../api/hooks";

/** Cancel, pause and resume, each offered only when the job's status allows it. */
export function JobControls({ job }: { job: Job }) {
  const cancel = useCancelJob();
  const pause = usePauseJob();
  const resume = useResumeJob();
  const busy = cancel.isPending || pause.isPending || resume.isPending;
  const canCancel = ["validating_files", "queued", "running", "paused"].includes(job.status);
  return (
    <div className="controls">
      {job.status === "running" && (
        <button type="button" className="button" disabled={busy} onClick={() => pause.mutate(job.id)}>Pause</button>
      )}
      {job.status === "paused" && (
        <button type="button" className="button primary" disabled={busy} onClick={() => resume.mutate(job.id)}>Resume</button>
      )}
      {canCancel && (
        <button type="button" className="button danger" disabled={busy}
                onClick={() => { if (confirm("Cancel this job? Its progress is kept in the log but no adapter is made.")) cancel.mutate(job.id); }}>
          Cancel
        </button>
      )}
      <ErrorBanner error={cancel.error ?? pause.error ?? resume.error} />
    </div>
  );
}
