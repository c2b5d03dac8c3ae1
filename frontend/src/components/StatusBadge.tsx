const TONE: Record<string, string> = {
  succeeded: "ok", ready: "ok", processed: "ok",
  running: "live", validating_files: "live", cancelling: "warn", pending: "live",
  queued: "idle", paused: "warn",
  failed: "bad", cancelled: "muted",
};

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${TONE[status] ?? "idle"}`}>{status.replace(/_/g, " ")}</span>;
}
