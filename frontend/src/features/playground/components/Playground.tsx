import { useCallback, useMemo, useRef, useState } from "react";
import { useModels } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { AnswerPane, type PaneHandle } from "./AnswerPane";

const MAX_ADAPTERS = 3;

/** One prompt; the base model and up to three adapters answer it side by side, streamed. */
export function Playground({ initialModel }: { initialModel?: string }) {
  const models = useModels();
  const all = useMemo(() => models.data?.data ?? [], [models.data]);
  const bases = all.filter((m) => (m.kind ?? (m.parent ? "adapter" : "base")) === "base");
  const adapters = all.filter((m) => (m.kind ?? (m.parent ? "adapter" : "base")) === "adapter");
  const initial = all.find((m) => m.id === initialModel);
  const initialIsAdapter = !!initialModel && (initial ? initial.kind === "adapter" || !!initial.parent : /[:@]/.test(initialModel));

  const [base, setBase] = useState<string>();
  const [chosen, setChosen] = useState<string[] | undefined>();
  const baseModel = base ?? (initialIsAdapter ? initial?.parent ?? bases[0]?.id : initialModel ?? bases[0]?.id) ?? "";
  const slots = chosen ?? (initialIsAdapter ? [initialModel!] : []);
  const [prompt, setPrompt] = useState("");
  const [system, setSystem] = useState("");
  const [maxTokens, setMaxTokens] = useState(64);
  const [temperature, setTemperature] = useState(0);
  const [busy, setBusy] = useState<Set<string>>(new Set());
  const panes = useRef(new Map<string, PaneHandle>());

  const onBusy = useCallback((model: string, on: boolean) => setBusy((b) => {
    if (b.has(model) === on) return b;
    const next = new Set(b);
    if (on) next.add(model); else next.delete(model);
    return next;
  }), []);
  const targets = [baseModel, ...slots.filter(Boolean)].filter((m, i, arr) => m && arr.indexOf(m) === i);
  const setSlot = (i: number, value: string) => {
    const next = [...slots];
    next[i] = value;
    setChosen(next.filter((v, j) => v || j < next.length - 1));
  };
  const send = (event: React.FormEvent) => {
    event.preventDefault();
    if (!prompt.trim()) return;
    const messages = [...(system.trim() ? [{ role: "system" as const, content: system.trim() }] : []), { role: "user" as const, content: prompt }];
    for (const model of targets) panes.current.get(model)?.ask({ messages, max_tokens: maxTokens, temperature });
  };

  return (
    <div className="playground">
      <ErrorBanner error={models.error} title="Models" />
      <section className="panel model-pickers" aria-label="Models">
        <label>Base model{" "}
          <select aria-label="Base model" value={baseModel} onChange={(e) => setBase(e.target.value)}>
            {bases.map((m) => <option key={m.id} value={m.id}>{m.id}</option>)}
          </select>
        </label>
        {[...slots, ""].slice(0, MAX_ADAPTERS).map((value, i) => (
          <label key={i}>Adapter {i + 1}{" "}
            <select aria-label={`Adapter ${i + 1}`} value={value} onChange={(e) => setSlot(i, e.target.value)}>
              <option value="">{value ? "(remove)" : "add an adapter…"}</option>
              {value && !adapters.some((a) => a.id === value) && <option value={value}>{value}</option>}
              {adapters.map((a) => <option key={a.id} value={a.id}>{a.id}{a.parent ? ` (on ${a.parent})` : ""}</option>)}
            </select>
          </label>
        ))}
        {adapters.length === 0 && !models.isPending && <p className="muted small">No adapters yet: a job that succeeds adds one.</p>}
      </section>
      <div className="panes" style={{ gridTemplateColumns: `repeat(${Math.max(1, targets.length)}, minmax(0, 1fr))` }}>
        {targets.map((model, i) => (
          <AnswerPane key={model} model={model} label={i === 0 ? "Base" : `Adapter ${i}`} onBusy={onBusy}
                      ref={(handle) => { if (handle) panes.current.set(model, handle); else panes.current.delete(model); }} />
        ))}
      </div>
      <form className="panel prompt" onSubmit={send} aria-label="Ask the models">
        <textarea aria-label="Prompt" rows={3} placeholder="Ask all models the same thing…" value={prompt}
                  onChange={(e) => setPrompt(e.target.value)}
                  onKeyDown={(e) => { if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) send(e); }} />
        <details>
          <summary>Settings</summary>
          <div className="row">
            <label>System prompt <input aria-label="System prompt" value={system} onChange={(e) => setSystem(e.target.value)} /></label>
            <label>Max tokens <input type="number" min={1} max={4096} value={maxTokens} onChange={(e) => setMaxTokens(Number(e.target.value) || 1)} /></label>
            <label>Temperature <input type="number" min={0} max={2} step={0.1} value={temperature} onChange={(e) => setTemperature(Number(e.target.value))} /></label>
          </div>
        </details>
        <div className="actions">
          <button type="submit" className="button primary" disabled={!prompt.trim() || targets.length === 0 || busy.size > 0}>Send to {targets.length} model{targets.length === 1 ? "" : "s"}</button>
          {busy.size > 0 && <button type="button" className="button" onClick={() => panes.current.forEach((p) => p.stop())}>Stop</button>}
        </div>
      </form>
    </div>
  );
}
