import { useState } from "react";
import type { Targets } from "../form/jobForm";

function ModuleNamesInput({ value, onChange }: { value: string[]; onChange: (names: string[]) => void }) {
  const [text, setText] = useState(value.join(", "));
  return (
    <input type="text" aria-label="Module names" placeholder="q_proj, v_proj" value={text}
           onChange={(e) => { setText(e.target.value); onChange(e.target.value.split(",").map((s) => s.trim()).filter(Boolean)); }} />
  );
}

interface Props {
  id: string;
  modules: string[] | undefined;
  loading: boolean;
  value: Targets;
  onChange: (value: Targets) => void;
  allowAll: boolean;
  familyDefault: boolean;
  invalid?: boolean;
}

/** Target modules from the base model's real linear layers, `all-linear`, or the method's default. */
export function TargetModulesPicker({ id, modules, loading, value, onChange, allowAll, familyDefault, invalid }: Props) {
  const mode = Array.isArray(value) ? "list" : value;
  const chosen = Array.isArray(value) ? value : [];
  const toggle = (name: string) =>
    onChange(chosen.includes(name) ? chosen.filter((m) => m !== name) : [...chosen, name]);
  return (
    <div className="modules" id={id} role="group" aria-label="Target modules" aria-invalid={invalid || undefined}>
      <div className="segmented">
        {familyDefault && (
          <label><input type="radio" name={`${id}-mode`} checked={mode === "family-default"} onChange={() => onChange("family-default")} /> Method default</label>
        )}
        {allowAll && (
          <label><input type="radio" name={`${id}-mode`} checked={mode === "all-linear"} onChange={() => onChange("all-linear")} /> all-linear</label>
        )}
        <label><input type="radio" name={`${id}-mode`} checked={mode === "list"} onChange={() => onChange(modules?.length ? [...modules.slice(0, 2)] : [])} /> Choose modules</label>
      </div>
      {mode === "list" && (
        loading ? <p className="muted">Reading the model's modules…</p>
          : modules && modules.length > 0 ? (
            <div className="chips">
              {modules.map((name) => (
                <label key={name} className={chosen.includes(name) ? "chip on" : "chip"}>
                  <input type="checkbox" checked={chosen.includes(name)} onChange={() => toggle(name)} /> {name}
                </label>
              ))}
            </div>
          ) : (
            <ModuleNamesInput value={chosen} onChange={onChange} />
          )
      )}
      {mode === "all-linear" && modules && modules.length > 0 && (
        <p className="help">Every linear layer: {modules.join(", ")}.</p>
      )}
    </div>
  );
}
