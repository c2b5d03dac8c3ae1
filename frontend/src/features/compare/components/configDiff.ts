/** `{a: {b: 1}}` → `{"a.b": "1"}`: leaves as display strings, for a key-by-key diff. */
export function flatten(value: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = value === undefined || value === null ? "—" : Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/** Rows of (key, value per run); `onlyDifferent` keeps the keys whose values are not all equal. */
export function diffRows(configs: Record<string, string>[], onlyDifferent: boolean): { key: string; values: string[]; differs: boolean }[] {
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].sort();
  return keys
    .map((key) => {
      const values = configs.map((c) => c[key] ?? "—");
      return { key, values, differs: new Set(values).size > 1 };
    })
    .filter((row) => !onlyDifferent || row.differs);
}
