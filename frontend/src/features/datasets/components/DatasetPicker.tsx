import { useState } from "react";
import { useFiles } from "../api/hooks";
import { TruncationNote } from "./TruncationNote";
import { UploadDropZone } from "./UploadDropZone";

interface Props {
  id: string;
  label: string;
  value: string;
  onChange: (fileId: string) => void;
  optional?: boolean;
  /** Formats the stage can train on; other files are listed but marked. */
  formats?: string[];
  /** The chosen base model and max_seq_length: the picker says how many examples would be truncated. */
  model?: string;
  maxSeqLength?: number;
}

/** Pick an uploaded dataset, or upload one in place (it is selected once validated). */
export function DatasetPicker({ id, label, value, onChange, optional, formats, model, maxSeqLength }: Props) {
  const files = useFiles();
  const [uploading, setUploading] = useState(false);
  const list = files.data?.data ?? [];
  return (
    <div className="dataset-picker">
      <div className="row">
        <select id={id} aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
          <option value="">{optional ? "None" : files.isPending ? "Loading…" : "Choose a dataset…"}</option>
          {list.map((f) => {
            const fits = !formats || formats.includes(f.format);
            return (
              <option key={f.id} value={f.id} disabled={!fits}>
                {f.filename} · {f.format} · {f.num_examples} examples{fits ? "" : " (wrong format for this stage)"}
              </option>
            );
          })}
        </select>
        <button type="button" className="button small" onClick={() => setUploading((u) => !u)}>
          {uploading ? "Close upload" : "Upload new"}
        </button>
      </div>
      {value && <TruncationNote fileId={value} model={model} maxSeqLength={maxSeqLength} />}
      {uploading && (
        <UploadDropZone compact onUploaded={(file) => { onChange(file.id); setUploading(false); }} />
      )}
    </div>
  );
}
