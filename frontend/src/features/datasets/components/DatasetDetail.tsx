import { Link } from "react-router";
import { ErrorBanner } from "@/components/ErrorBanner";
import { StatusBadge } from "@/components/StatusBadge";
import { formatBytes } from "@/lib/format";
import { useDeleteFile, useFile } from "../api/hooks";
import { newJobLink } from "../stage";
import { DatasetPreview } from "./DatasetPreview";
import { TokenHistogram } from "./TokenHistogram";
import { describeMapping } from "./UploadDropZone";

/** A validated dataset: its report, length histogram and first rows. */
export function DatasetDetail({ id, onDeleted }: { id: string; onDeleted?: () => void }) {
  const file = useFile(id);
  const remove = useDeleteFile();
  if (file.isError) return <ErrorBanner error={file.error} title="Dataset" />;
  if (file.isPending) return <p className="muted">Loading…</p>;
  const f = file.data;
  return (
    <section className="panel" aria-label={`Dataset ${f.filename}`}>
      <div className="panel-head">
        <h2>{f.filename} <StatusBadge status={f.status} /></h2>
        <div className="controls">
        <Link className="button primary small" to={newJobLink(f)}>Fine-tune on it</Link>
        <button type="button" className="button danger small" disabled={remove.isPending}
                onClick={() => { if (confirm(`Delete ${f.filename}?`)) remove.mutate(f.id, { onSuccess: onDeleted }); }}>
          Delete
        </button>
        </div>
      </div>
      <p className="validated">
        Validated: <b>{f.num_examples}</b> examples in <b>{f.format}</b> format, {formatBytes(f.bytes)}.{" "}
        <span className="muted small">sha256 {f.sha256.slice(0, 16)}… · <code>{f.id}</code></span>
        {f.column_mapping && <><br />Columns read as <b>{describeMapping(f.column_mapping)}</b>.</>}
      </p>
      <ErrorBanner error={remove.error} />
      <TokenHistogram tokenStats={f.token_stats} />
      <h3>First rows</h3>
      <DatasetPreview file={f} />
    </section>
  );
}
