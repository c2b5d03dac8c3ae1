import type { JobCreate } from "@/api/client";
import type { Memory } from "@/api/registry";
import { errorMessage } from "@/api/client";
import { formatBytes, formatCount } from "@/lib/format";
import { useDebounced } from "@/lib/useDebounced";
import { useEstimate } from "../api/hooks";

const PARTS: { key: keyof Omit<Memory, "total">; label: string; color: string }[] = [
  { key: "weights", label: "Weights", color: "#64748b" },
  { key: "adapter", label: "Adapter", color: "#2563eb" },
  { key: "gradients", label: "Gradients", color: "#f59e0b" },
  { key: "optimizer", label: "Optimizer", color: "#10b981" },
  { key: "activations", label: "Activations", color: "#a855f7" },
];

/** Trainable parameters and memory by part, re-estimated by the server as the form changes. */
export function EstimatePanel({ body, invalid }: { body: Partial<JobCreate> | null; invalid: boolean }) {
  const settled = useDebounced(body, 300);
  const estimate = useEstimate(settled);
  const data = estimate.data;
  const updating = estimate.isFetching || JSON.stringify(settled) !== JSON.stringify(body);
  return (
    <aside className="panel estimate" aria-label="Estimate" aria-busy={updating}>
      <div className="panel-head">
        <h3>Estimate</h3>
        {updating && <span className="muted small">updating…</span>}
      </div>
      {!body?.model && <p className="muted">Choose a base model to see parameters and memory.</p>}
      {invalid && <p className="muted small">Fix the highlighted fields to update the estimate.</p>}
      {estimate.isError && <p className="field-error">Estimate unavailable: {errorMessage(estimate.error)}</p>}
      {data && (
        <>
          <dl className="stats">
            <div><dt>Trainable parameters</dt><dd data-testid="trainable-params">{formatCount(data.trainable_params)}</dd></div>
            <div><dt>Of total</dt><dd>{formatCount(data.total_params)} ({((100 * data.trainable_params) / Math.max(1, data.total_params)).toFixed(2)}%)</dd></div>
            <div><dt>Memory, one device</dt><dd data-testid="memory-total">{formatBytes(data.memory.total)}</dd></div>
          </dl>
          <div className="stack-bar" aria-hidden="true">
            {PARTS.map((p) => (
              <span key={p.key} style={{ width: `${(100 * data.memory[p.key]) / Math.max(1, data.memory.total)}%`, background: p.color }} />
            ))}
          </div>
          <table className="table compact memory">
            <tbody>
              {PARTS.map((p) => (
                <tr key={p.key}>
                  <td><i className="swatch" style={{ background: p.color }} /> {p.label}</td>
                  <td className="num">{formatBytes(data.memory[p.key])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </aside>
  );
}
