import { ErrorBanner } from "@/components/ErrorBanner";
import { formatBytes, formatTime } from "@/lib/format";
import { useFiles } from "../api/hooks";

export function DatasetList({ selected, onSelect }: { selected?: string; onSelect: (id: string) => void }) {
  const files = useFiles();
  if (files.isError) return <ErrorBanner error={files.error} title="Datasets" />;
  if (files.isPending) return <p className="muted">Loading datasets…</p>;
  if (files.data.data.length === 0) return <p className="empty">No datasets yet: drop one above, or try <code>examples/data/chat.jsonl</code>.</p>;
  return (
    <table className="table" aria-label="Datasets">
      <thead>
        <tr><th>File</th><th>Format</th><th className="num">Examples</th><th className="num">Size</th><th>Uploaded</th></tr>
      </thead>
      <tbody>
        {files.data.data.map((f) => (
          <tr key={f.id} className={f.id === selected ? "selected clickable" : "clickable"} onClick={() => onSelect(f.id)}>
            <td><button type="button" className="link" onClick={() => onSelect(f.id)}>{f.filename}</button><div className="muted small">{f.id}</div></td>
            <td>{f.format}</td>
            <td className="num">{f.num_examples}</td>
            <td className="num">{formatBytes(f.bytes)}</td>
            <td>{formatTime(f.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
