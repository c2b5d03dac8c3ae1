// Which fields each tuning type uses, with the server's defaults and bounds (worker/finetune/spec.py).
// `name` is checked against the generated type of that tuning type, so a renamed field fails to compile.
import type { Tuning, TuningType } from "@/api/client";

type Num = { kind: "int" | "float"; min?: number; max?: number; above?: number; below?: number; step?: number; default: number };
type Choice = { kind: "select"; options: readonly string[]; default: string };
type Flag = { kind: "bool"; default: boolean };
type Text = { kind: "text"; default: string; placeholder?: string };
type Modules = { kind: "modules"; allowAll: boolean; default: "all-linear" | "family-default" };
export type FieldKind = Num | Choice | Flag | Text | Modules;

type FieldsOf<T extends TuningType> = Exclude<keyof Extract<Tuning, { type?: T }> & string, "type">;
export type FieldSpec<T extends TuningType = TuningType> = { name: FieldsOf<T>; label: string; help?: string } & FieldKind;

const r = (d: number): FieldSpec<"lora"> => ({ name: "r", label: "Rank r", kind: "int", min: 1, max: 4096, default: d, help: "Width of the low-rank update; more rank, more trainable parameters." });
const alpha = (d: number): FieldSpec<"lora"> => ({ name: "alpha", label: "Alpha", kind: "float", above: 0, max: 65536, default: d, step: 1, help: "Scale of the update (alpha / r)." });
const dropout: FieldSpec<"lora"> = { name: "dropout", label: "Dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 };
const targets: FieldSpec<"lora"> = { name: "target_modules", label: "Target modules", kind: "modules", allowAll: true, default: "all-linear" };
const int8: FieldSpec<"lora"> = { name: "quantization", label: "Base quantization", kind: "select", options: ["none", "int8"], default: "none" };
const tokens: FieldSpec<"prompt_tuning"> = { name: "num_virtual_tokens", label: "Virtual tokens", kind: "int", min: 1, max: 1024, default: 20, help: "Learned prompt length." };

export const TUNING_FIELDS: { [T in TuningType]: FieldSpec<T>[] } = {
  lora: [r(16), alpha(32), dropout, targets, int8],
  dora: [r(16), alpha(32), dropout, targets, int8],
  qlora: [r(16), alpha(32), dropout, targets,
    { name: "quantization", label: "4-bit quantization", kind: "select", options: ["nf4", "fp4"], default: "nf4" },
    { name: "double_quant", label: "Double quantization", kind: "bool", default: true }],
  adalora: [
    { name: "r", label: "Average rank r", kind: "int", min: 1, max: 4096, default: 8, help: "Budget the ranks are pruned down to." },
    { name: "init_r", label: "Initial rank", kind: "int", min: 1, max: 4096, default: 12 },
    { name: "alpha", label: "Alpha", kind: "float", above: 0, max: 65536, default: 32 },
    { name: "dropout", label: "Dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "target_modules", label: "Target modules", kind: "modules", allowAll: true, default: "all-linear" },
    { name: "quantization", label: "Base quantization", kind: "select", options: ["none", "int8"], default: "none" }],
  ia3: [
    { name: "target_modules", label: "Target modules", kind: "modules", allowAll: true, default: "family-default" },
    { name: "quantization", label: "Base quantization", kind: "select", options: ["none", "int8"], default: "none" }],
  prefix_tuning: [tokens as FieldSpec<"prefix_tuning">,
    { name: "encoder_hidden_size", label: "Encoder hidden size", kind: "int", min: 1, max: 16384, default: 512 }],
  p_tuning_v2: [tokens as FieldSpec<"p_tuning_v2">],
  prompt_tuning: [tokens,
    { name: "init_text", label: "Initialise from text", kind: "text", default: "", placeholder: "optional, e.g. Answer the question:" }],
  p_tuning: [tokens as FieldSpec<"p_tuning">,
    { name: "encoder_hidden_size", label: "Encoder hidden size", kind: "int", min: 1, max: 16384, default: 128 },
    { name: "encoder_type", label: "Encoder", kind: "select", options: ["MLP", "LSTM"], default: "MLP" }],
  loha: [
    { name: "r", label: "Rank r", kind: "int", min: 1, max: 4096, default: 8 },
    { name: "alpha", label: "Alpha", kind: "float", above: 0, max: 65536, default: 16 },
    { name: "rank_dropout", label: "Rank dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "module_dropout", label: "Module dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "target_modules", label: "Target modules", kind: "modules", allowAll: true, default: "all-linear" }],
  lokr: [
    { name: "r", label: "Rank r", kind: "int", min: 1, max: 4096, default: 8 },
    { name: "alpha", label: "Alpha", kind: "float", above: 0, max: 65536, default: 16 },
    { name: "rank_dropout", label: "Rank dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "module_dropout", label: "Module dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "target_modules", label: "Target modules", kind: "modules", allowAll: true, default: "all-linear" },
    { name: "decompose_both", label: "Decompose both factors", kind: "bool", default: false }],
  adapter: [
    { name: "bottleneck_size", label: "Bottleneck size", kind: "int", min: 1, max: 16384, default: 64 },
    { name: "non_linearity", label: "Non-linearity", kind: "select", options: ["relu", "gelu", "silu", "tanh"], default: "gelu" },
    { name: "dropout", label: "Dropout", kind: "float", min: 0, below: 1, default: 0, step: 0.05 },
    { name: "target_modules", label: "After modules", kind: "modules", allowAll: false, default: "family-default" }],
  freeze: [
    { name: "trainable_layers", label: "Trainable last blocks", kind: "int", min: 1, max: 1024, default: 2 },
    { name: "train_embeddings", label: "Train embeddings", kind: "bool", default: false }],
  full: [],
};

export const TUNING_GROUPS: { label: string; types: { type: TuningType; label: string }[] }[] = [
  { label: "Low-rank adapters", types: [
    { type: "lora", label: "LoRA" }, { type: "qlora", label: "QLoRA (4-bit base)" }, { type: "dora", label: "DoRA" },
    { type: "adalora", label: "AdaLoRA" }, { type: "loha", label: "LoHa" }, { type: "lokr", label: "LoKr" }] },
  { label: "Prompt methods", types: [
    { type: "prompt_tuning", label: "Prompt tuning" }, { type: "prefix_tuning", label: "Prefix tuning" },
    { type: "p_tuning", label: "P-tuning" }, { type: "p_tuning_v2", label: "P-tuning v2" }] },
  { label: "Other", types: [
    { type: "ia3", label: "IA3" }, { type: "adapter", label: "Bottleneck adapter" },
    { type: "freeze", label: "Freeze (train last blocks)" }, { type: "full", label: "Full fine-tune" }] },
];

export const TUNING_LABEL = Object.fromEntries(TUNING_GROUPS.flatMap((g) => g.types.map((t) => [t.type, t.label]))) as Record<TuningType, string>;
export const PROMPT_TYPES: readonly TuningType[] = ["prefix_tuning", "p_tuning_v2", "prompt_tuning", "p_tuning"];

export const STAGES = [
  { value: "supervised", label: "Supervised (SFT)", formats: ["chat", "prompt_completion", "alpaca"] },
  { value: "pretraining", label: "Continued pretraining", formats: ["text"] },
  { value: "dpo", label: "Preference (DPO)", formats: ["preference"] },
] as const;
export type Stage = (typeof STAGES)[number]["value"];
