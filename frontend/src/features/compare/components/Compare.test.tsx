import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mockApi } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { Compare } from "./Compare";
import { runLabels } from "./runLabels";

const job = (id: string, fine_tuned_model: string | null, lr: number) => ({
  object: "fine_tuning.job", id, status: fine_tuned_model ? "succeeded" : "running", model: "studio-tiny-llama", fine_tuned_model,
  created_at: 1_700_000_000, finished_at: null, error: null, trained_tokens: null, hyperparameters: { n_epochs: 1, batch_size: 4 },
  method: { type: "supervised" }, training_file: "file-1", validation_file: null, suffix: "support-bot", seed: 7, metadata: null,
  tuning: { type: "lora", r: 8 }, training: { learning_rate: lr }, priority: 0, queue_position: null, attempt: 1,
  progress: null, trainable_params: null, adapter: null, estimated_finish: null, owner: null, team: null,
});
// Two versions of one adapter (same suffix) and a third run of it still training.
const JOBS = [job("ftjob-aaaaaa111111", "support-bot:1", 1e-4), job("ftjob-bbbbbb222222", "support-bot:2", 2e-4),
  job("ftjob-cccccc333333", null, 3e-4)];
const metric = (step: number, loss: number) => ({ object: "fine_tuning.job.event", id: `e${step}`, created_at: 1, level: "info",
  message: "", type: "metrics", data: { step, total_steps: 2, train_loss: loss }, attempt: 1 });

describe("Compare", () => {
  beforeEach(() => {
    mockApi({
      "GET /v1/fine_tuning/jobs": { object: "list", data: JOBS, has_more: false },
      ...Object.fromEntries(JOBS.map((j, i) => [`GET /v1/fine_tuning/jobs/${j.id}/events`,
        { object: "list", data: [metric(1, 2 + i), metric(2, 1 + i)], has_more: false }])),
    });
  });
  afterEach(() => vi.unstubAllGlobals());

  it("labels two versions of one adapter by name:version, in the diff columns and the legend", async () => {
    renderWithProviders(<Compare selected={JOBS.map((j) => j.id)} onSelect={() => {}} />);
    const diff = await screen.findByRole("table", { name: "Config diff" });
    await waitFor(() => expect(within(diff).getAllByRole("columnheader").map((th) => th.textContent))
      .toEqual(["Field", "support-bot:1", "support-bot:2", "support-bot · 333333"]));
    const legend = document.querySelector(".chart-legend")!;
    await waitFor(() => {
      for (const label of ["support-bot:1", "support-bot:2", "support-bot · 333333"]) expect(legend.textContent).toContain(label);
    });
  });

  it("keeps labels unique even when two runs would read the same", () => {
    const twins = [job("ftjob-x00000000001", null, 1), { ...job("ftjob-y00000000001", null, 1) }];
    const labels = runLabels(twins as never);
    expect(new Set(labels.values()).size).toBe(2);
  });
});
