import { useState } from "react";
import { buildMapping, columnsFromError, MAPPING_FORMATS, OPTIONAL_FIELDS } from "../mapping";

interface Props {
  /** The server's refusal, which lists the file's columns. */
  message: string;
  pending?: boolean;
  onSubmit: (mapping: Record<string, string>) => void;
}

/** Shown when the server could not tell what the file's columns mean: name them, and upload again. */
export function ColumnMappingForm({ message, pending, onSubmit }: Props) {
  const columns = columnsFromError(message);
  const [format, setFormat] = useState<string>(MAPPING_FORMATS[0].value);
  const [chosen, setChosen] = useState<Record<string, string>>({});
  const fields = MAPPING_FORMATS.find((f) => f.value === format)!.fields;
  const mapping = buildMapping(fields, chosen);
  return (
    <form className="panel column-mapping" aria-label="Column mapping"
          onSubmit={(e) => { e.preventDefault(); if (mapping) onSubmit(mapping); }}>
      <p>Tell the studio which of your columns is which, and upload again.</p>
      <label>
        Format{" "}
        <select aria-label="Format" value={format} onChange={(e) => { setFormat(e.target.value); setChosen({}); }}>
          {MAPPING_FORMATS.map((f) => <option key={f.value} value={f.value}>{f.label}</option>)}
        </select>
      </label>
      {fields.map((field) => (
        <label key={field} className="row">
          <code>{field}</code>{OPTIONAL_FIELDS.has(field) ? " (optional)" : ""} ←{" "}
          {columns.length > 0 ? (
            <select aria-label={`Column for ${field}`} value={chosen[field] ?? ""}
                    onChange={(e) => setChosen((c) => ({ ...c, [field]: e.target.value }))}>
              <option value="">Choose a column…</option>
              {columns.map((c) => <option key={c} value={c}>{c}</option>)}
            </select>
          ) : (
            <input aria-label={`Column for ${field}`} value={chosen[field] ?? ""} placeholder="your column's name"
                   onChange={(e) => setChosen((c) => ({ ...c, [field]: e.target.value }))} />
          )}
        </label>
      ))}
      <button type="submit" className="button primary small" disabled={!mapping || pending}>Upload with this mapping</button>
    </form>
  );
}
