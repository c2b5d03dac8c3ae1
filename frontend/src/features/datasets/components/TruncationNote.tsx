import { useTokenStats } from "../api/hooks";

/** How many of a dataset's examples `max_seq_length` would cut, with the chosen base's tokenizer. */
export function TruncationNote({ fileId, model, maxSeqLength }: { fileId: string; model?: string; maxSeqLength?: number }) {
  const stats = useTokenStats(fileId, model, maxSeqLength);
  if (!fileId || !model || !maxSeqLength) return null;
  if (stats.isPending) return <p className="muted small">Counting tokens…</p>;
  if (stats.isError) return <p className="muted small" role="note">Token counts unavailable: {stats.error.message}</p>;
  const s = stats.data;
  const share = Math.round((s.truncated_share ?? 0) * 1000) / 10;
  return (
    <p className={(s.truncated ?? 0) > 0 ? "small" : "small muted"} style={(s.truncated ?? 0) > 0 ? { color: "var(--warn)" } : undefined}
       role="note" data-testid="truncation">
      {s.truncated ?? 0} of {s.count} examples ({share}%) are longer than {maxSeqLength} tokens with {s.model}'s
      tokenizer (cut for SFT and DPO, split into pieces for continued pretraining); median {s.p50}, p95 {s.p95},
      max {s.max} tokens{s.sampled ? " (a sample of the file)" : ""}.
    </p>
  );
}
