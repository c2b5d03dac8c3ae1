import { ErrorBanner } from "@/components/ErrorBanner";
import { formatNumber, formatTime } from "@/lib/format";
import { useCheckpoints } from "../api/hooks";

export function CheckpointsTable({ jobId, live }: { jobId: string; live: boolean }) {
  const checkpoints = useCheckpoints(jobId, live);
  if (checkpoints.isError) return <ErrorBanner error={checkpoints.error} title="Checkpoints" />;
  const rows = checkpoints.data?.data ?? [];
  if (rows.length === 0) return <p className="muted">No checkpoints yet (saved every save_steps and on pause).</p>;
  return (
    <table className="table compact" aria-label="Checkpoints">
      <thead><tr><th className="num">Step</th><th>Metrics</th><th>Saved</th></tr></thead>
      <tbody>
        {rows.map((c) => (
          <tr key={c.id}>
            <td className="num">{c.step_number}</td>
            <td>{Object.entries(c.metrics ?? {}).filter(([k, v]) => v != null && k !== "step").map(([k, v]) => `${k} ${typeof v === "number" ? formatNumber(v) : String(v)}`).join(" · ") || "—"}</td>
            <td>{formatTime(c.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
