// Which training stage a dataset format is for, so "Fine-tune on it" opens the form on the right one.
export type StageName = "supervised" | "pretraining" | "dpo";

export function stageForFormat(format: string | undefined): StageName {
  if (format === "preference") return "dpo";
  if (format === "text") return "pretraining";
  return "supervised";
}

/** The new-job form's address for a file: its id, and the stage its format trains. */
export function newJobLink(file: { id: string; format?: string }): string {
  const query = new URLSearchParams({ training_file: file.id, stage: stageForFormat(file.format) });
  return `/jobs/new?${query}`;
}
