// The column-mapping form's model: which studio fields each format needs, and what a refusal tells us.
export const MAPPING_FORMATS = [
  { value: "prompt_completion", label: "Prompt / completion", fields: ["prompt", "completion"] },
  { value: "alpaca", label: "Instruction / input / output", fields: ["instruction", "input", "output"] },
  { value: "chat", label: "Chat messages (or ShareGPT conversations)", fields: ["messages"] },
  { value: "text", label: "Raw text (continued pretraining)", fields: ["text"] },
  { value: "preference", label: "Preference (DPO)", fields: ["prompt", "chosen", "rejected"] },
] as const;

export const OPTIONAL_FIELDS = new Set(["input"]);

/** The columns a refusal lists ("fields present: q, a" / "columns present: …"). */
export function columnsFromError(message: string): string[] {
  const match = /(?:fields|columns) present: ([^)]*)\)/.exec(message);
  if (!match || match[1] === "none") return [];
  return match[1].split(",").map((c) => c.trim()).filter(Boolean);
}

/** Whether a refusal is about the file's column names (so a mapping can fix it). */
export function needsMapping(message: string): boolean {
  return /column_mapping|matches no known format|missing (field|column) '|is not in the file/.test(message);
}

/** The mapping to send: studio field -> column, leaving out blank optional fields. */
export function buildMapping(fields: readonly string[], chosen: Record<string, string>): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const field of fields) {
    const column = (chosen[field] ?? "").trim();
    if (!column) {
      if (OPTIONAL_FIELDS.has(field)) continue;
      return null;
    }
    out[field] = column;
  }
  return out;
}
