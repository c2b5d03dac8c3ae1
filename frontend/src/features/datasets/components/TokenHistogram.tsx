import { formatCount } from "@/lib/format";

interface Stats {
  count?: number;
  mean?: number;
  p50?: number;
  p95?: number;
  max?: number;
  histogram?: { edges: number[]; counts: number[] };
}

/** The length statistics of a file: tokens when the server counted them, else characters. */
export function lengthStats(tokenStats: Record<string, unknown> | null | undefined): { unit: string; stats: Stats } | null {
  if (!tokenStats) return null;
  if ("histogram" in tokenStats) return { unit: "tokens", stats: tokenStats as Stats };
  for (const [key, unit] of [["tokens", "tokens"], ["token_stats", "tokens"], ["char_stats", "characters"]] as const) {
    const value = tokenStats[key];
    if (value && typeof value === "object") return { unit, stats: value as Stats };
  }
  return null;
}

const W = 560;
const H = 140;

export function TokenHistogram({ tokenStats }: { tokenStats: Record<string, unknown> | null | undefined }) {
  const found = lengthStats(tokenStats);
  if (!found?.stats.histogram) return <p className="muted">No length statistics for this file.</p>;
  const { unit, stats } = found;
  const { edges, counts } = stats.histogram!;
  const peak = Math.max(1, ...counts);
  const bar = W / Math.max(1, counts.length);
  return (
    <figure className="histogram" aria-label={`Length histogram (${unit})`}>
      <figcaption>
        Length per example, in {unit}: median <b>{stats.p50}</b>, p95 <b>{stats.p95}</b>, max <b>{stats.max}</b>
        {stats.count != null && <> over {formatCount(stats.count)} examples</>}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H + 18}`} role="img" width="100%">
        {counts.map((c, i) => {
          const h = (c / peak) * H;
          return (
            <rect key={i} x={i * bar + 1} y={H - h} width={Math.max(1, bar - 2)} height={h} className="bar">
              <title>{`${edges[i]}–${edges[i + 1]} ${unit}: ${c} examples`}</title>
            </rect>
          );
        })}
        <text x={0} y={H + 14} className="axis">{edges[0]}</text>
        <text x={W} y={H + 14} className="axis" textAnchor="end">{edges[edges.length - 1]}</text>
      </svg>
    </figure>
  );
}
