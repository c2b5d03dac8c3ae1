// Reads just enough of a dataset to show its first rows (the stream is cancelled after that).
import { authFetch } from "@/api/auth";

export type PreviewRow = Record<string, unknown>;
export interface Preview {
  rows: PreviewRow[];
  note?: string;
}

const MAX_BYTES = 1 << 20;

async function readHead(url: string, enough: (text: string) => boolean, signal?: AbortSignal): Promise<string> {
  const response = await authFetch(url, { signal });
  if (!response.ok || !response.body) throw new Error(`Could not read the file (${response.status}).`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value) text += decoder.decode(value, { stream: true });
    if (done) break;
    if (enough(text) || text.length > MAX_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return text;
}

/** Splits one CSV line (quotes and doubled quotes; a quoted field spanning lines is not previewed). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { field += '"'; i += 1; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { out.push(field); field = ""; }
    else field += ch;
  }
  out.push(field);
  return out;
}

export async function readPreview(url: string, filename: string, rows: number, signal?: AbortSignal): Promise<Preview> {
  const ext = filename.toLowerCase().split(".").pop();
  const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (ext === "parquet") return { rows: [], note: "Parquet files are not previewed in the browser." };
  if (ext === "json") {
    const text = await readHead(url, () => false, signal);
    if (text.trimStart().startsWith("[")) {
      try {
        return { rows: (JSON.parse(text) as PreviewRow[]).slice(0, rows) };
      } catch {
        return { rows: [], note: "This JSON array is too large to preview here (the first MiB is not a whole array)." };
      }
    }
    // a .json file holding one object per line is read as JSONL, as the server does
  }
  if (ext === "csv") {
    const text = await readHead(url, (t) => lines(t).length > rows + 1, signal);
    const [header, ...body] = lines(text);
    const names = splitCsvLine(header ?? "");
    return { rows: body.slice(0, rows).map((l) => Object.fromEntries(splitCsvLine(l).map((v, i) => [names[i] ?? `col${i}`, v]))) };
  }
  const text = await readHead(url, (t) => lines(t).length > rows, signal);
  return { rows: lines(text).slice(0, rows).map((l) => JSON.parse(l) as PreviewRow) };
}
