import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockApi, Reply } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { JobForm, type DatasetPickerSlot } from "./JobForm";

const LLAMA = { id: "studio-tiny-llama", object: "model", created: 0, owned_by: "studio", parent: null, kind: "base", model_type: "llama", modules: ["q_proj", "v_proj"] };
const HUB = { id: "acme/tiny-chat", object: "model", created: 0, owned_by: "hub", parent: null, kind: "base", model_type: "qwen2", modules: ["q_proj", "v_proj"] };
const NOT_CACHED = "Hub model 'acme/typo': it is not in this machine's Hugging Face cache and the hub is offline (HF_HUB_OFFLINE). Download it first (`hf download acme/typo`), or use a local model folder.";

const Picker = (slot: DatasetPickerSlot) => <input id={slot.id} aria-label={slot.label} readOnly value={slot.value} />;

function setup() {
  const api = mockApi({
    "GET /v1/models": { object: "list", data: [LLAMA] },
    "GET /v1/models/acme%2Ftiny-chat": HUB,
    "GET /v1/models/acme%2Ftypo": new Reply(404, { error: { message: NOT_CACHED, type: "invalid_request_error", param: "model", code: "model_not_found" } }),
    "POST /v1/estimate": { object: "estimate", total_params: 1, trainable_params: 1, memory: { weights: 1, adapter: 0, gradients: 0, optimizer: 0, activations: 0, total: 1 } },
  });
  renderWithProviders(<JobForm renderDatasetPicker={(slot) => <Picker {...slot} />} onCreated={() => {}} />);
  return api;
}

const checks = (calls: { method: string; path: string }[], id: string) =>
  calls.filter((c) => c.method === "GET" && c.path === `/v1/models/${encodeURIComponent(id)}`).length;

describe("BaseModelField", () => {
  it("offers the listed bases and takes a typed hub id, checked once typing pauses", async () => {
    const { calls } = setup();
    const input = screen.getByLabelText("Base model");
    await waitFor(() => expect(input).toHaveValue("studio-tiny-llama"));
    expect(document.querySelector("datalist option[value='studio-tiny-llama']")).not.toBeNull();
    expect(screen.queryByText(/Checking|Found/)).toBeNull(); // a listed base is not asked about

    const user = userEvent.setup();
    await user.clear(input);
    await user.type(input, "acme/tiny-chat");
    expect(input).toHaveValue("acme/tiny-chat"); // clearing did not snap back to the first listed base
    expect(await screen.findByText("Found: in the Hugging Face cache (qwen2).")).toBeInTheDocument();
    expect(checks(calls, "acme/tiny-chat")).toBeLessThanOrEqual(2); // not one request per keystroke
    expect(checks(calls, "acme/tiny-cha")).toBe(0);
  });

  it("says at once why a typed hub id cannot be used", async () => {
    setup();
    const input = screen.getByLabelText("Base model");
    await waitFor(() => expect(input).toHaveValue("studio-tiny-llama"));
    const user = userEvent.setup();
    await user.clear(input);
    await user.type(input, "acme/typo");
    const alert = await screen.findByText(NOT_CACHED);
    expect(alert).toHaveAttribute("role", "alert");
    expect(input).toHaveAttribute("aria-invalid", "true");
  });
});
