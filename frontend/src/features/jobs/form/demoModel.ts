// The bundled demo base has random weights, so a fine-tune on it shows the pipeline but not better
// answers. Said under the base-model field rather than hidden behind other defaults: measured on
// examples/data/chat.jsonl (docs/training-core.md, "The demo model"), no learning rate or step count that
// finishes in minutes on a CPU makes its answers follow the data.
export const DEMO_MODEL = "studio-tiny-llama";

export const DEMO_MODEL_NOTE =
  "studio-tiny-llama has random weights (7M parameters, built offline): it shows the whole pipeline — loss " +
  "curve, registry, playground — not useful answers. Fine-tuned on the samples it answers with empty or " +
  "one-letter text instead of noise, whatever the learning rate or steps (LoRA at 2e-4 to 3e-2 for 40-300 " +
  "steps; even a full fine-tune to loss 2.0 gets none of 18 sample answers right). For answers that follow " +
  "your data, choose a pretrained model (a hub id or a model folder).";

export function demoModelNote(model: string): string | undefined {
  return model.trim() === DEMO_MODEL ? DEMO_MODEL_NOTE : undefined;
}
