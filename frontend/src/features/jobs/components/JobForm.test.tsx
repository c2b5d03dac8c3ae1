import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { mockApi, Reply, type Routes } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { JobForm, type DatasetPickerSlot } from "./JobForm";

const MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
const MODELS = {
  object: "list",
  data: [
    { id: "studio-tiny-llama", object: "model", created: 0, owned_by: "studio", parent: null, kind: "base", model_type: "llama", modules: MODULES },
    { id: "chat-lora:1", object: "model", created: 0, owned_by: "studio", parent: "studio-tiny-llama", kind: "adapter" },
  ],
};
const estimateFor = ({ body }: { body: unknown }) => {
  const r = Number((body as { tuning: { r?: number } }).tuning.r ?? 0);
  return { object: "estimate", total_params: 4_000_000, trainable_params: r * 1000,
    memory: { weights: 16e6, adapter: r * 4000, gradients: r * 4000, optimizer: r * 8000, activations: 2e6, total: 20e6 } };
};

function Picker(slot: DatasetPickerSlot) {
  return (
    <select id={slot.id} aria-label={slot.label} value={slot.value} onChange={(e) => slot.onChange(e.target.value)}>
      <option value="">none</option>
      <option value="file-chat">chat.jsonl</option>
    </select>
  );
}

function setup(routes: Routes = {}) {
  const api = mockApi({ "GET /v1/models": MODELS, "POST /v1/estimate": estimateFor, ...routes });
  const onCreated = vi.fn();
  renderWithProviders(<JobForm renderDatasetPicker={(slot) => <Picker {...slot} />} onCreated={onCreated} />);
  return { ...api, onCreated };
}

const field = (id: string) => document.querySelector(`[data-field="${id}"]`) as HTMLElement | null;
const chooseType = (type: string) => fireEvent.change(screen.getByLabelText("Tuning type"), { target: { value: type } });

describe("JobForm", () => {
  beforeEach(() => vi.unstubAllGlobals());

  it("shows only the fields the chosen tuning type uses", async () => {
    setup();
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    // adapters are not offered as a base
    expect(within(screen.getByLabelText("Base model")).queryByText("chat-lora:1")).toBeNull();

    expect(screen.getByLabelText("Rank r")).toHaveValue(16);
    expect(screen.getByLabelText("Alpha")).toHaveValue(32);
    expect(screen.getByLabelText("Dropout")).toBeInTheDocument();
    expect(screen.getByRole("group", { name: "Target modules" })).toBeInTheDocument();
    expect(screen.queryByLabelText("Virtual tokens")).toBeNull();
    expect(screen.queryByLabelText("4-bit quantization")).toBeNull();

    chooseType("qlora");
    const quant = screen.getByLabelText("4-bit quantization");
    expect([...quant.querySelectorAll("option")].map((o) => o.value)).toEqual(["nf4", "fp4"]);
    expect(screen.getByLabelText("Double quantization")).toBeChecked();

    chooseType("prompt_tuning");
    expect(screen.getByLabelText("Virtual tokens")).toHaveValue(20);
    expect(screen.getByLabelText("Initialise from text")).toBeInTheDocument();
    expect(screen.queryByLabelText("Rank r")).toBeNull();
    expect(screen.queryByRole("group", { name: "Target modules" })).toBeNull();

    chooseType("adalora");
    expect(screen.getByLabelText("Average rank r")).toHaveValue(8);
    expect(screen.getByLabelText("Initial rank")).toHaveValue(12);

    chooseType("full");
    expect(screen.getByText(/has no method settings/)).toBeInTheDocument();
  });

  it("says under the demo base why its answers will not visibly follow the data", async () => {
    setup();
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    expect(within(field("model")!).getByText(/random weights/)).toBeInTheDocument();
  });

  it("offers the base model's real module names as targets, and all-linear", async () => {
    setup();
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    const group = screen.getByRole("group", { name: "Target modules" });
    expect(within(group).getByLabelText("all-linear")).toBeChecked();
    await userEvent.click(within(group).getByLabelText("Choose modules"));
    for (const name of MODULES) expect(within(group).getByLabelText(name)).toBeInTheDocument();
    // unticking every module is refused before anything is sent
    for (const box of within(group).getAllByRole("checkbox")) if ((box as HTMLInputElement).checked) await userEvent.click(box);
    expect(within(field("tuning.target_modules")!).getByRole("alert")).toHaveTextContent("choose at least one module");
  });

  it("refuses an invalid rank next to its field and posts nothing", async () => {
    const { calls } = setup();
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    fireEvent.change(screen.getByLabelText("Rank r"), { target: { value: "0" } });
    expect(within(field("tuning.r")!).getByRole("alert")).toHaveTextContent("must be at least 1");
    fireEvent.change(screen.getByLabelText("Dropout"), { target: { value: "1.5" } });
    expect(within(field("tuning.dropout")!).getByRole("alert")).toHaveTextContent("must be less than 1");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));
    expect(within(field("training_file")!).getByRole("alert")).toHaveTextContent("choose or upload a training dataset");
    expect(calls.some((c) => c.path === "/v1/fine_tuning/jobs")).toBe(false);
  });

  it("shows the server's validation error next to the field its param names", async () => {
    const { calls } = setup({
      "POST /v1/fine_tuning/jobs": new Reply(400, { error: {
        message: "Unknown target module(s) qq_proj for a 'llama' model.", type: "invalid_request_error",
        param: "tuning.target_modules", code: "invalid_target_modules" } }),
    });
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    fireEvent.change(screen.getByLabelText("Training dataset"), { target: { value: "file-chat" } });
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));
    await waitFor(() => expect(within(field("tuning.target_modules")!).getByRole("alert")).toHaveTextContent("Unknown target module(s) qq_proj"));
    const posted = calls.find((c) => c.method === "POST" && c.path === "/v1/fine_tuning/jobs")!.body;
    expect(posted).toEqual({
      model: "studio-tiny-llama", training_file: "file-chat",
      method: { type: "supervised", supervised: { hyperparameters: {} } },
      tuning: { type: "lora", r: 16, alpha: 32, dropout: 0, target_modules: "all-linear", quantization: "none" },
      training: { max_seq_length: 1024, warmup_ratio: 0.03, lr_scheduler: "cosine" },
    });
  });

  it("maps a server error on a hyperparameter to its field and submits a valid job", async () => {
    let refuse = true;
    const { onCreated } = setup({
      "POST /v1/fine_tuning/jobs": ({ body }) => refuse
        ? new Reply(400, { error: { message: "n_epochs too large for this dataset", type: "invalid_request_error", param: "method.supervised.hyperparameters.n_epochs", code: "invalid_value" } })
        : { id: "ftjob-1", status: "queued", body },
    });
    await waitFor(() => expect(screen.getByLabelText("Base model")).toHaveValue("studio-tiny-llama"));
    fireEvent.change(screen.getByLabelText("Training dataset"), { target: { value: "file-chat" } });
    fireEvent.change(screen.getByLabelText("Epochs"), { target: { value: "7" } });
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));
    await waitFor(() => expect(within(field("hyper.n_epochs")!).getByRole("alert")).toHaveTextContent("n_epochs too large"));
    refuse = false;
    fireEvent.change(screen.getByLabelText("Epochs"), { target: { value: "2" } });
    expect(within(field("hyper.n_epochs")!).queryByRole("alert")).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalledWith(expect.objectContaining({ id: "ftjob-1" })));
  });

  it("re-estimates parameters and memory as the rank changes", async () => {
    const { calls } = setup();
    await waitFor(() => expect(screen.getByTestId("trainable-params")).toHaveTextContent("16.0K"));
    fireEvent.change(screen.getByLabelText("Rank r"), { target: { value: "64" } });
    await waitFor(() => expect(screen.getByTestId("trainable-params")).toHaveTextContent("64.0K"));
    const estimates = calls.filter((c) => c.path === "/v1/estimate");
    expect(estimates.at(-1)!.body).toMatchObject({ model: "studio-tiny-llama", tuning: { type: "lora", r: 64 } });
    expect(estimates.at(-1)!.body).not.toHaveProperty("training_file"); // optional for an estimate
  });
});
