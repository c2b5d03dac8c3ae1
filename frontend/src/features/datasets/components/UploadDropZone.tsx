import { useRef, useState, type DragEvent } from "react";
import type { FileObject } from "@/api/client";
import { useUploadFile } from "../api/hooks";
import { ValidationReport } from "./ValidationReport";

const ACCEPT = ".jsonl,.json,.csv,.parquet";

/** Drop a dataset (or choose one); it is validated by the server and reported line by line. */
export function UploadDropZone({ onUploaded, compact }: { onUploaded?: (file: FileObject) => void; compact?: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [name, setName] = useState<string>();
  const upload = useUploadFile();

  const send = (file: File | undefined) => {
    if (!file) return;
    setName(file.name);
    upload.mutate(file, { onSuccess: (stored) => onUploaded?.(stored) });
  };
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    send(event.dataTransfer.files[0]);
  };

  return (
    <div className="upload">
      <div
        className={`dropzone${over ? " over" : ""}${compact ? " compact" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => { e.preventDefault(); setOver(true); }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>
          <strong>Drop a dataset here</strong> or{" "}
          <button type="button" className="link" onClick={() => input.current?.click()}>choose a file</button>
        </p>
        {!compact && (
          <p className="muted">
            JSONL, JSON, CSV or Parquet: chat <code>messages</code>, <code>prompt</code>/<code>completion</code>,
            alpaca, raw <code>text</code>, or <code>prompt</code>/<code>chosen</code>/<code>rejected</code> for DPO.
          </p>
        )}
        <input ref={input} type="file" accept={ACCEPT} hidden aria-label="Dataset file"
               onChange={(e) => { send(e.target.files?.[0]); e.target.value = ""; }} />
        {upload.isPending && <p className="muted">Uploading and validating {name}…</p>}
        {upload.isSuccess && <p className="ok-text">{upload.data.filename}: {upload.data.num_examples} examples, format {upload.data.format}.</p>}
      </div>
      {upload.isError && <ValidationReport error={upload.error} filename={name} />}
    </div>
  );
}
