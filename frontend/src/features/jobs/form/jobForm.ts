// The new-job form's values, their client-side validation (zod) and the job body they become.
// Field ids are the form's paths (`tuning.r`, `hyper.n_epochs`, `training.max_steps`); `fieldOfParam`
// maps the server's error `param` (`method.supervised.hyperparameters.n_epochs`) onto them.
import { z } from "zod";
import type { JobCreate, TuningType } from "@/api/client";
import { PROMPT_TYPES, TUNING_FIELDS, type FieldSpec, type Stage } from "./tuningFields";

export type Targets = "all-linear" | "family-default" | string[];

export interface FormValues {
  model: string;
  training_file: string;
  validation_file: string;
  stage: Stage;
  tuningType: TuningType;
  tuning: Record<string, string | boolean>;
  targets: Targets;
  hyper: { n_epochs: string; batch_size: string; learning_rate_multiplier: string; beta: string };
  training: { learning_rate: string; max_steps: string; max_seq_length: string; warmup_ratio: string; lr_scheduler: string; packing: boolean };
  suffix: string;
  seed: string;
}

export const LR_SCHEDULERS = ["cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"] as const;

export function tuningDefaults(type: TuningType): { tuning: Record<string, string | boolean>; targets: Targets } {
  const tuning: Record<string, string | boolean> = {};
  let targets: Targets = "family-default";
  for (const field of TUNING_FIELDS[type] as FieldSpec[]) {
    if (field.kind === "modules") targets = field.default;
    else tuning[field.name] = field.kind === "bool" ? field.default : String(field.default);
  }
  return { tuning, targets };
}

export function initialValues(model = ""): FormValues {
  return {
    model,
    training_file: "",
    validation_file: "",
    stage: "supervised",
    tuningType: "lora",
    ...tuningDefaults("lora"),
    hyper: { n_epochs: "", batch_size: "", learning_rate_multiplier: "", beta: "" },
    training: { learning_rate: "", max_steps: "", max_seq_length: "1024", warmup_ratio: "0.03", lr_scheduler: "cosine", packing: false },
    suffix: "",
    seed: "",
  };
}

function numberSchema(kind: "int" | "float", b: { min?: number; max?: number; above?: number; below?: number }) {
  let s = z.number({ error: "must be a number" });
  if (kind === "int") s = s.int({ error: "must be a whole number" });
  if (b.min !== undefined) s = s.min(b.min, { error: `must be at least ${b.min}` });
  if (b.max !== undefined) s = s.max(b.max, { error: `must be at most ${b.max}` });
  if (b.above !== undefined) s = s.gt(b.above, { error: `must be greater than ${b.above}` });
  if (b.below !== undefined) s = s.lt(b.below, { error: `must be less than ${b.below}` });
  return s;
}

// Optional numbers: empty means "auto" / the server's default.
const OPTIONAL_NUMBERS: Record<string, { kind: "int" | "float"; min?: number; max?: number; above?: number; below?: number }> = {
  "hyper.n_epochs": { kind: "int", min: 1, max: 100 },
  "hyper.batch_size": { kind: "int", min: 1, max: 1024 },
  "hyper.learning_rate_multiplier": { kind: "float", above: 0, max: 100 },
  "hyper.beta": { kind: "float", above: 0, max: 10 },
  "training.learning_rate": { kind: "float", above: 0, max: 1 },
  "training.max_steps": { kind: "int", min: 1, max: 1_000_000 },
  "training.max_seq_length": { kind: "int", min: 1, max: 1_048_576 },
  "training.warmup_ratio": { kind: "float", min: 0, below: 1 },
  seed: { kind: "int", min: 0, max: 2 ** 31 - 1 },
};

const SUFFIX = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "letters, digits, '.', '_' and '-', starting with a letter or digit" }).max(64);

export type FieldErrors = Record<string, string>;

function readNumber(raw: string, schema: z.ZodNumber, errors: FieldErrors, field: string): number | undefined {
  if (raw.trim() === "") return undefined;
  const result = schema.safeParse(Number(raw));
  if (!result.success) {
    errors[field] = result.error.issues[0]?.message ?? "invalid";
    return undefined;
  }
  return result.data;
}

const valueAt = (v: FormValues, path: string): string => {
  const [head, tail] = path.split(".");
  return String(tail ? (v[head as "hyper" | "training"] as Record<string, unknown>)[tail] ?? "" : (v as unknown as Record<string, unknown>)[head] ?? "");
};

/**
 * Validate the form and build the job body. `forEstimate` allows a missing dataset (the estimate
 * needs only the model and the method).
 */
export function buildJob(v: FormValues, { forEstimate = false } = {}): { body: JobCreate | null; errors: FieldErrors } {
  const errors: FieldErrors = {};
  if (!v.model) errors.model = "choose a base model";
  if (!v.training_file && !forEstimate) errors.training_file = "choose or upload a training dataset";

  const tuning: Record<string, unknown> = { type: v.tuningType };
  for (const field of TUNING_FIELDS[v.tuningType] as FieldSpec[]) {
    const id = `tuning.${field.name}`;
    if (field.kind === "int" || field.kind === "float") {
      const raw = String(v.tuning[field.name] ?? "");
      if (raw.trim() === "") errors[id] = "required";
      else {
        const n = readNumber(raw, numberSchema(field.kind, field), errors, id);
        if (n !== undefined) tuning[field.name] = n;
      }
    } else if (field.kind === "bool") tuning[field.name] = !!v.tuning[field.name];
    else if (field.kind === "select") tuning[field.name] = v.tuning[field.name] || field.default;
    else if (field.kind === "text") {
      const text = String(v.tuning[field.name] ?? "").trim();
      if (text) tuning[field.name] = text;
    } else if (field.kind === "modules") {
      if (Array.isArray(v.targets)) {
        if (v.targets.length === 0) errors[id] = "choose at least one module, or all-linear";
        else tuning[field.name] = v.targets;
      } else if (v.targets === "all-linear") tuning[field.name] = "all-linear";
    }
  }
  if (v.tuningType === "adalora" && Number(tuning.init_r) < Number(tuning.r)) {
    errors["tuning.init_r"] = "must be at least the average rank r (AdaLoRA prunes down to r)";
  }
  if (v.stage === "dpo" && PROMPT_TYPES.includes(v.tuningType)) {
    errors.tuningType = "DPO cannot train prompt methods; use LoRA, QLoRA, DoRA or full";
  }

  const numbers: Record<string, number> = {};
  for (const [path, bounds] of Object.entries(OPTIONAL_NUMBERS)) {
    if (path === "hyper.beta" && v.stage !== "dpo") continue;
    const n = readNumber(valueAt(v, path), numberSchema(bounds.kind, bounds), errors, path);
    if (n !== undefined) numbers[path] = n;
  }
  if (v.suffix) {
    const suffix = SUFFIX.safeParse(v.suffix);
    if (!suffix.success) errors.suffix = suffix.error.issues[0]?.message ?? "invalid";
  }

  if (Object.keys(errors).length > 0) return { body: null, errors };

  const pick = (prefix: string) => Object.fromEntries(Object.entries(numbers)
    .filter(([k]) => k.startsWith(prefix)).map(([k, n]) => [k.slice(prefix.length), n]));
  const training: Record<string, unknown> = { ...pick("training."), lr_scheduler: v.training.lr_scheduler };
  if (v.training.packing) training.packing = true;
  const body = {
    model: v.model,
    training_file: v.training_file || undefined,
    validation_file: v.validation_file || undefined,
    suffix: v.suffix || undefined,
    seed: numbers.seed,
    method: { type: v.stage, [v.stage]: { hyperparameters: pick("hyper.") } },
    tuning,
    training,
  } as unknown as JobCreate;
  return { body: JSON.parse(JSON.stringify(body)) as JobCreate, errors };
}

/** The form field a server error's `param` names (`method.dpo.hyperparameters.beta` → `hyper.beta`). */
export function fieldOfParam(param: string | null | undefined): string | null {
  if (!param) return null;
  const hyper = param.match(/^method\.[a-z]+\.hyperparameters\.([a-z_]+)/);
  if (hyper) return `hyper.${hyper[1]}`;
  if (param === "tuning.type" || param === "tuning") return "tuningType";
  if (param.startsWith("method")) return "stage";
  const known = /^(model|training_file|validation_file|suffix|seed|tuning\.[a-z_0-9]+|training\.[a-z_]+)/.exec(param);
  return known ? known[1] : null;
}
