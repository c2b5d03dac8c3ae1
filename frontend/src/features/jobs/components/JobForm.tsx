import { useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, type Job, type TuningType } from "@/api/client";
import { useModels } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { useDebounced } from "@/lib/useDebounced";
import { useCreateJob, useModelModules } from "../api/hooks";
import { demoModelNote } from "../form/demoModel";
import { buildJob, fieldOfParam, initialValues, LR_SCHEDULERS, tuningDefaults, type FormValues } from "../form/jobForm";
import { STAGES, TUNING_GROUPS, type Stage } from "../form/tuningFields";
import { BaseModelField } from "./BaseModelField";
import { EstimatePanel } from "./EstimatePanel";
import { Field } from "./Field";
import { TuningFields } from "./TuningFields";

export interface DatasetPickerSlot {
  id: string;
  label: string;
  value: string;
  onChange: (fileId: string) => void;
  optional?: boolean;
  formats: string[];
  /** The chosen base and max_seq_length, for the picker's truncation note. */
  model?: string;
  maxSeqLength?: number;
}

interface Props {
  /** The datasets feature's picker (with upload in place), handed in by the route. */
  renderDatasetPicker: (slot: DatasetPickerSlot) => ReactNode;
  onCreated: (job: Job) => void;
  initialTrainingFile?: string;
  /** The stage to open on (`?stage=` from "Fine-tune on it": dpo for preference data, pretraining for text). */
  initialStage?: string;
}

type HyperKey = keyof FormValues["hyper"];
type TrainingKey = keyof FormValues["training"];

export function JobForm({ renderDatasetPicker, onCreated, initialTrainingFile = "", initialStage }: Props) {
  const models = useModels();
  const bases = useMemo(() => (models.data?.data ?? []).filter((m) => (m.kind ?? (m.parent ? "adapter" : "base")) === "base"), [models.data]);
  const [values, setValues] = useState<FormValues>(() => ({
    ...initialValues(), training_file: initialTrainingFile,
    ...(STAGES.some((s) => s.value === initialStage) ? { stage: initialStage as Stage } : {}),
  }));
  const [showAll, setShowAll] = useState(false);
  const [touched, setTouched] = useState<Set<string>>(new Set());
  const [serverError, setServerError] = useState<ApiError | Error | null>(null);
  const create = useCreateJob();

  useEffect(() => {
    if (!values.model && bases[0] && !touched.has("model")) setValues((v) => ({ ...v, model: bases[0].id }));
  }, [bases, values.model, touched]);  // once: a user clearing the field to type a hub id keeps it empty

  const base = bases.find((m) => m.id === values.model);
  const modules = useModelModules(useDebounced(values.model, 400), base?.modules);  // typed ids: once typing pauses
  const check = buildJob(values);
  const forEstimate = buildJob(values, { forEstimate: true });
  const serverField = serverError instanceof ApiError ? fieldOfParam(serverError.param) : null;
  const errors: Record<string, string> = Object.fromEntries(
    Object.entries(check.errors).filter(([id]) => showAll || touched.has(id)));
  if (serverField && serverError) errors[serverField] = serverError.message;
  const formats = STAGES.find((s) => s.value === values.stage)!.formats as unknown as string[];

  const edit = (id: string, change: (v: FormValues) => FormValues) => {
    setValues(change);
    setTouched((t) => (t.has(id) ? t : new Set(t).add(id)));
    if (serverError && (serverField === id || !serverField)) setServerError(null);
  };
  const setTop = (key: "model" | "training_file" | "validation_file" | "suffix" | "seed", value: string) => edit(key, (v) => ({ ...v, [key]: value }));
  const setHyper = (key: HyperKey, value: string) => edit(`hyper.${key}`, (v) => ({ ...v, hyper: { ...v.hyper, [key]: value } }));
  const setTraining = (key: TrainingKey, value: string | boolean) => edit(`training.${key}`, (v) => ({ ...v, training: { ...v.training, [key]: value } }));
  const setType = (type: TuningType) => edit("tuningType", (v) => ({ ...v, tuningType: type, ...tuningDefaults(type) }));

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    setShowAll(true);
    if (!check.body) return;
    create.mutate(check.body, { onSuccess: (job) => onCreated(job), onError: (e) => setServerError(e) });
  };

  const numberInput = (id: string, value: string, onChange: (s: string) => void, placeholder: string, step: string | number = "any") => (
    <input id={id} type="number" step={step} placeholder={placeholder} value={value} onChange={(e) => onChange(e.target.value)}
           aria-invalid={!!errors[id]} aria-describedby={errors[id] ? `${id}-error` : undefined} />
  );

  return (
    <form className="job-form" onSubmit={submit} noValidate aria-label="New fine-tuning job">
      <div className="form-main">
        <section className="panel">
          <h3>Base model and data</h3>
          <Field id="model" label="Base model" error={errors.model} help={demoModelNote(values.model)}>
            <BaseModelField id="model" value={values.model} bases={bases} invalid={!!errors.model} onChange={(m) => setTop("model", m)} />
          </Field>
          <Field id="training_file" label="Training dataset" error={errors.training_file}>
            {renderDatasetPicker({ id: "training_file", label: "Training dataset", value: values.training_file, onChange: (id) => setTop("training_file", id), formats, model: values.model, maxSeqLength: Number(values.training.max_seq_length) || undefined })}
          </Field>
          <Field id="validation_file" label="Validation dataset (optional)" error={errors.validation_file} help="Adds a validation loss curve.">
            {renderDatasetPicker({ id: "validation_file", label: "Validation dataset", value: values.validation_file, onChange: (id) => setTop("validation_file", id), optional: true, formats })}
          </Field>
        </section>

        <section className="panel">
          <h3>Method</h3>
          <Field id="stage" label="Stage" error={errors.stage}>
            <div className="segmented" id="stage" role="radiogroup" aria-label="Stage">
              {STAGES.map((s) => (
                <label key={s.value} className={values.stage === s.value ? "on" : ""}>
                  <input type="radio" name="stage" value={s.value} checked={values.stage === s.value}
                         onChange={() => edit("stage", (v) => ({ ...v, stage: s.value as Stage }))} /> {s.label}
                </label>
              ))}
            </div>
          </Field>
          <Field id="tuningType" label="Tuning type" error={errors.tuningType}>
            <select id="tuningType" value={values.tuningType} onChange={(e) => setType(e.target.value as TuningType)}>
              {TUNING_GROUPS.map((g) => (
                <optgroup key={g.label} label={g.label}>
                  {g.types.map((t) => <option key={t.type} value={t.type}>{t.label}</option>)}
                </optgroup>
              ))}
            </select>
          </Field>
          <TuningFields
            type={values.tuningType} values={values.tuning} targets={values.targets} errors={errors}
            modules={modules.data} modulesLoading={modules.isFetching && !modules.data}
            onChange={(name, value) => edit(`tuning.${name}`, (v) => ({ ...v, tuning: { ...v.tuning, [name]: value } }))}
            onTargets={(targets) => edit("tuning.target_modules", (v) => ({ ...v, targets }))}
          />
        </section>

        <section className="panel">
          <h3>Hyperparameters</h3>
          <p className="help">Empty fields are chosen for you (OpenAI's “auto”): 3 epochs, batch 8, a learning rate suited to the method.</p>
          <div className="grid-fields">
            <Field id="hyper.n_epochs" label="Epochs" error={errors["hyper.n_epochs"]}>{numberInput("hyper.n_epochs", values.hyper.n_epochs, (s) => setHyper("n_epochs", s), "auto", 1)}</Field>
            <Field id="hyper.batch_size" label="Batch size" error={errors["hyper.batch_size"]}>{numberInput("hyper.batch_size", values.hyper.batch_size, (s) => setHyper("batch_size", s), "auto", 1)}</Field>
            <Field id="training.learning_rate" label="Learning rate" error={errors["training.learning_rate"]}>{numberInput("training.learning_rate", values.training.learning_rate, (s) => setTraining("learning_rate", s), "auto")}</Field>
            <Field id="hyper.learning_rate_multiplier" label="LR multiplier" error={errors["hyper.learning_rate_multiplier"]}>{numberInput("hyper.learning_rate_multiplier", values.hyper.learning_rate_multiplier, (s) => setHyper("learning_rate_multiplier", s), "auto")}</Field>
            {values.stage === "dpo" && (
              <Field id="hyper.beta" label="DPO beta" error={errors["hyper.beta"]}>{numberInput("hyper.beta", values.hyper.beta, (s) => setHyper("beta", s), "auto (0.1)")}</Field>
            )}
            <Field id="training.max_steps" label="Max steps" error={errors["training.max_steps"]} help="Stop early; empty runs every epoch.">{numberInput("training.max_steps", values.training.max_steps, (s) => setTraining("max_steps", s), "all epochs", 1)}</Field>
            <Field id="training.max_seq_length" label="Max sequence length" error={errors["training.max_seq_length"]}>{numberInput("training.max_seq_length", values.training.max_seq_length, (s) => setTraining("max_seq_length", s), "1024", 1)}</Field>
            <Field id="training.warmup_ratio" label="Warm-up ratio" error={errors["training.warmup_ratio"]}>{numberInput("training.warmup_ratio", values.training.warmup_ratio, (s) => setTraining("warmup_ratio", s), "0.03")}</Field>
            <Field id="training.lr_scheduler" label="LR schedule" error={errors["training.lr_scheduler"]}>
              <select id="training.lr_scheduler" value={values.training.lr_scheduler} onChange={(e) => setTraining("lr_scheduler", e.target.value)}>
                {LR_SCHEDULERS.map((s) => <option key={s} value={s}>{s}</option>)}
              </select>
            </Field>
            <Field id="training.packing" label="Pack examples into full rows" inline error={errors["training.packing"]}>
              <input id="training.packing" type="checkbox" checked={values.training.packing} onChange={(e) => setTraining("packing", e.target.checked)} />
            </Field>
          </div>
        </section>

        <section className="panel">
          <h3>Name</h3>
          <div className="grid-fields">
            <Field id="suffix" label="Adapter name (suffix)" error={errors.suffix} help="The registry name; default: <model>-<method>.">
              <input id="suffix" type="text" value={values.suffix} placeholder="my-assistant" onChange={(e) => setTop("suffix", e.target.value)} />
            </Field>
            <Field id="seed" label="Seed" error={errors.seed}>{numberInput("seed", values.seed, (s) => setTop("seed", s), "random", 1)}</Field>
          </div>
        </section>

        {serverError && !serverField && <ErrorBanner error={serverError} title="The server refused the job" />}
        {showAll && !check.body && <p className="field-error" role="status">Some fields need attention (marked above).</p>}
        <div className="actions">
          <button type="submit" className="button primary" disabled={create.isPending}>
            {create.isPending ? "Starting…" : "Start fine-tune"}
          </button>
        </div>
      </div>
      <EstimatePanel body={forEstimate.body} invalid={!forEstimate.body} />
    </form>
  );
}
