import { Link } from "react-router";
import { useAdapters } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { formatTime } from "@/lib/format";

export function AdapterList({ selected }: { selected?: string }) {
  const adapters = useAdapters();
  if (adapters.isError) return <ErrorBanner error={adapters.error} title="Registry" />;
  if (adapters.isPending) return <p className="muted">Loading the registry…</p>;
  if (adapters.data.data.length === 0) {
    return <p className="empty">No adapters yet. Every job that succeeds adds a version here; <Link to="/jobs/new">start one</Link>.</p>;
  }
  return (
    <table className="table" aria-label="Adapters">
      <thead><tr><th>Adapter</th><th>Base model</th><th className="num">Versions</th><th>Aliases</th><th>Created</th></tr></thead>
      <tbody>
        {adapters.data.data.map((a) => (
          <tr key={a.name} className={a.name === selected ? "selected" : ""}>
            <td><Link to={`/registry/${encodeURIComponent(a.name)}`}>{a.name}</Link></td>
            <td>{a.base_model ?? "—"}</td>
            <td className="num">{a.versions.length || a.latest_version || 0}</td>
            <td>{Object.entries(a.aliases ?? {}).map(([alias, v]) => <span key={alias} className="tag">@{alias} → v{v}</span>)}</td>
            <td>{formatTime(a.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
