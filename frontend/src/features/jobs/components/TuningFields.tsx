import type { TuningType } from "@/api/client";
import type { FieldErrors, Targets } from "../form/jobForm";
import { TUNING_FIELDS, type FieldSpec } from "../form/tuningFields";
import { Field } from "./Field";
import { TargetModulesPicker } from "./TargetModulesPicker";

interface Props {
  type: TuningType;
  values: Record<string, string | boolean>;
  targets: Targets;
  modules: string[] | undefined;
  modulesLoading: boolean;
  errors: FieldErrors;
  onChange: (name: string, value: string | boolean) => void;
  onTargets: (targets: Targets) => void;
}

/** Only the fields the chosen tuning type uses. */
export function TuningFields({ type, values, targets, modules, modulesLoading, errors, onChange, onTargets }: Props) {
  const fields = TUNING_FIELDS[type] as FieldSpec[];
  if (fields.length === 0) return <p className="muted">Full fine-tuning trains every weight; it has no method settings.</p>;
  return (
    <div className="grid-fields">
      {fields.map((field) => {
        const id = `tuning.${field.name}`;
        const error = errors[id];
        const describedBy = error ? `${id}-error` : undefined;
        switch (field.kind) {
          case "modules":
            return (
              <div className="span-all" key={id}>
                <Field id={id} label={field.label} error={error}>
                  <TargetModulesPicker id={id} modules={modules} loading={modulesLoading} value={targets} onChange={onTargets}
                                       allowAll={field.allowAll} familyDefault={field.default === "family-default"} invalid={!!error} />
                </Field>
              </div>
            );
          case "bool":
            return (
              <Field key={id} id={id} label={field.label} error={error} inline>
                <input id={id} type="checkbox" checked={!!values[field.name]} onChange={(e) => onChange(field.name, e.target.checked)} />
              </Field>
            );
          case "select":
            return (
              <Field key={id} id={id} label={field.label} error={error} help={field.help}>
                <select id={id} value={String(values[field.name] ?? field.default)} onChange={(e) => onChange(field.name, e.target.value)} aria-describedby={describedBy}>
                  {field.options.map((o) => <option key={o} value={o}>{o}</option>)}
                </select>
              </Field>
            );
          case "text":
            return (
              <Field key={id} id={id} label={field.label} error={error} help={field.help}>
                <input id={id} type="text" placeholder={field.placeholder} value={String(values[field.name] ?? "")} onChange={(e) => onChange(field.name, e.target.value)} aria-describedby={describedBy} />
              </Field>
            );
          default:
            return (
              <Field key={id} id={id} label={field.label} error={error} help={field.help}>
                <input id={id} type="number" inputMode={field.kind === "int" ? "numeric" : "decimal"} step={field.step ?? (field.kind === "int" ? 1 : "any")}
                       value={String(values[field.name] ?? "")} onChange={(e) => onChange(field.name, e.target.value)}
                       aria-invalid={!!error} aria-describedby={describedBy} />
              </Field>
            );
        }
      })}
    </div>
  );
}
