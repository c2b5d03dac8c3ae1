import { formatDuration } from "@/lib/format";

interface Props {
  step: number;
  total?: number | null;
  etaSeconds?: number | null;
  compact?: boolean;
}

/** Steps done of total, with the estimated time left. */
export function ProgressBar({ step, total, etaSeconds, compact }: Props) {
  const fraction = total ? Math.min(1, step / total) : 0;
  const label = total ? `${step} / ${total} steps` : step ? `step ${step}` : "not started";
  return (
    <div className={compact ? "progress compact" : "progress"}>
      <div className="progress-track" role="progressbar" aria-valuemin={0} aria-valuemax={total ?? undefined} aria-valuenow={step} aria-label="Training progress">
        <div className="progress-fill" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      </div>
      <span className="progress-label">
        {label}
        {etaSeconds != null && fraction < 1 && <> · ETA {formatDuration(etaSeconds)}</>}
      </span>
    </div>
  );
}
