import type { FileObject } from "@/api/client";
import { ErrorBanner } from "@/components/ErrorBanner";
import { useFilePreview } from "../api/hooks";

function Cell({ value }: { value: unknown }) {
  if (Array.isArray(value) && value.every((m) => m && typeof m === "object" && "role" in m)) {
    return (
      <div className="turns">
        {value.map((m, i) => (
          <div key={i} className={`turn turn-${String(m.role)}`}>
            <span className="role">{String(m.role)}</span> {String(m.content ?? "")}
          </div>
        ))}
      </div>
    );
  }
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return <span className="cell-text">{text && text.length > 400 ? `${text.slice(0, 400)}…` : text}</span>;
}

/** The first rows of a dataset, as a table. */
export function DatasetPreview({ file }: { file: FileObject }) {
  const preview = useFilePreview(file);
  if (preview.isPending) return <p className="muted">Loading rows…</p>;
  if (preview.isError) return <ErrorBanner error={preview.error} title="Preview" />;
  const { rows, note } = preview.data;
  if (note) return <p className="muted">{note}</p>;
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return (
    <table className="table preview" aria-label="Preview of rows">
      <thead>
        <tr><th>#</th>{columns.map((c) => <th key={c}>{c}</th>)}</tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            <td className="num">{i + 1}</td>
            {columns.map((c) => <td key={c}><Cell value={row[c]} /></td>)}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
