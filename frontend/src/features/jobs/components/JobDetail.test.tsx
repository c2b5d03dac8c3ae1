import { act, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formatTime } from "@/lib/format";
import { FakeEventSource } from "@/test/fakeEventSource";
import { mockApi } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { JobDetail } from "./JobDetail";

const ID = "ftjob-1";
const ERROR = { code: "out_of_memory", message: "CUDA out of memory at step 2", param: null };
const JOB = {
  object: "fine_tuning.job", id: ID, status: "failed", model: "studio-tiny-llama", fine_tuned_model: null, created_at: 1_700_000_000,
  finished_at: 1_700_000_060, error: ERROR, trained_tokens: null, hyperparameters: { n_epochs: 1, batch_size: 4 },
  method: { type: "supervised" }, training_file: "file-1", validation_file: null, suffix: "demo", seed: 7, metadata: null,
  tuning: { type: "lora", r: 8 }, training: { max_steps: 3 }, priority: 0, queue_position: null, attempt: 1,
  progress: { step: 2, total_steps: 3, eta_seconds: null }, trainable_params: 4096, adapter: null, estimated_finish: null,
  owner: null, team: null,
};
const event = (seq: number, type: string, message: string, data: object | null, level = "info") =>
  ({ object: "fine_tuning.job.event", id: `ftevent-1-${seq}`, created_at: 1_700_000_000 + seq * 10, level, message, type, data, attempt: 1 });
// What GET /v1/fine_tuning/jobs/ftjob-1/events answers: the worker's own status events, a metric, its failure.
const REST_EVENTS = [
  event(1, "status", "Job running", { status: "running" }),
  event(2, "metrics", "Step 1/3", { step: 1, total_steps: 3, train_loss: 2.5 }),
  event(3, "status", `Job failed: ${ERROR.message}`, { status: "failed", error: ERROR }, "error"),
];

describe("JobDetail", () => {
  beforeEach(() => {
    FakeEventSource.opened = [];
    vi.stubGlobal("EventSource", FakeEventSource);
    mockApi({
      [`GET /v1/fine_tuning/jobs/${ID}`]: JOB,
      [`GET /v1/fine_tuning/jobs/${ID}/checkpoints`]: { object: "list", data: [], has_more: false, first_id: null, last_id: null },
      [`GET /v1/fine_tuning/jobs/${ID}/events`]: { object: "list", data: REST_EVENTS, has_more: false },
    });
  });
  afterEach(() => vi.unstubAllGlobals());

  it("lists a failed job's events exactly as REST does (the stream's final status adds none)", async () => {
    renderWithProviders(<JobDetail id={ID} />);
    expect(await screen.findByText(ERROR.message, { exact: false })).toBeInTheDocument();
    const source = FakeEventSource.opened[0];
    act(() => {
      source.open();
      for (const e of REST_EVENTS) source.emit(e.type === "status" ? "message" : e.type, e); // as the server frames them
      source.emit("status", { status: "failed" }); // the stream's end: not an event of the job
    });
    await waitFor(() => expect(source.readyState).toBe(FakeEventSource.CLOSED));
    const log = await screen.findByRole("list", { name: "Event log" });
    await waitFor(() => expect(within(log).getAllByRole("listitem")).toHaveLength(2));
    const shown = within(log).getAllByRole("listitem").map((li) => li.textContent);
    const rest = REST_EVENTS.filter((e) => e.type !== "metrics").map((e) => `${formatTime(e.created_at)}${e.type}${e.message}`);
    expect(shown).toEqual(rest);
  });
});
