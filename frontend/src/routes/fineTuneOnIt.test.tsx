// "Fine-tune on it" opens the new-job form on the stage the dataset's format trains (issue 9).
import { fireEvent, screen, waitFor } from "@testing-library/react";
import { Route, Routes } from "react-router";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { mockApi } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { DatasetsPage, NewJobPage } from "./pages";

const FILE = { object: "file", bytes: 10, created_at: 0, purpose: "fine-tune", status: "processed", num_examples: 3,
  sha256: "0".repeat(64), token_stats: null };
const PREF = { ...FILE, id: "file-pref", filename: "pairs.jsonl", format: "preference" };
const TEXT = { ...FILE, id: "file-text", filename: "book.txt", format: "text" };
const CHAT = { ...FILE, id: "file-chat", filename: "chat.jsonl", format: "chat" };
const MODELS = { object: "list", data: [{ id: "studio-tiny-llama", object: "model", created: 0, owned_by: "studio", parent: null, kind: "base", model_type: "llama", modules: ["q_proj"] }] };
const estimate = { object: "estimate", total_params: 1, trainable_params: 1, memory: { weights: 1, adapter: 1, gradients: 1, optimizer: 1, activations: 1, total: 1 } };

function app(route: string) {
  mockApi({
    "GET /v1/files": { object: "list", data: [PREF, TEXT, CHAT], has_more: false },
    "GET /v1/files/file-pref": PREF, "GET /v1/files/file-text": TEXT, "GET /v1/files/file-chat": CHAT,
    "GET /v1/files/file-pref/content": () => "", "GET /v1/files/file-text/content": () => "", "GET /v1/files/file-chat/content": () => "",
    "GET /v1/models": MODELS, "POST /v1/estimate": estimate,
    "GET /v1/files/file-pref/token_stats": { object: "file.token_stats", file_id: "file-pref", model: "studio-tiny-llama", count: 3, total: 30, mean: 10, p50: 10, p95: 12, max: 12, min: 8, histogram: { edges: [], counts: [] }, max_seq_length: 1024, truncated: 0, truncated_share: 0 },
    "GET /v1/files/file-text/token_stats": { object: "file.token_stats", file_id: "file-text", model: "studio-tiny-llama", count: 3, total: 3000, mean: 1000, p50: 900, p95: 1500, max: 1500, min: 600, histogram: { edges: [], counts: [] }, max_seq_length: 1024, truncated: 1, truncated_share: 1 / 3 },
  });
  renderWithProviders(
    <Routes>
      <Route path="/datasets/:id" element={<DatasetsPage />} />
      <Route path="/jobs/new" element={<NewJobPage />} />
    </Routes>, { route });
}

describe("Fine-tune on it", () => {
  beforeEach(() => vi.unstubAllGlobals());

  it.each([
    ["file-pref", "Preference (DPO)"],
    ["file-text", "Continued pretraining"],
    ["file-chat", "Supervised (SFT)"],
  ])("from %s opens the form on %s with the file chosen and not marked wrong", async (id, stage) => {
    app(`/datasets/${id}`);
    fireEvent.click(await screen.findByRole("link", { name: "Fine-tune on it" }));
    await waitFor(() => expect(screen.getByRole("radio", { name: stage })).toBeChecked());
    const picker = screen.getByLabelText("Training dataset") as HTMLSelectElement;
    await waitFor(() => expect(picker.value).toBe(id));
    expect(picker.selectedOptions[0].disabled).toBe(false);
    expect(picker.selectedOptions[0].textContent).not.toContain("wrong format");
  });

  it("says how many examples the chosen max_seq_length would truncate", async () => {
    app("/jobs/new?training_file=file-text&stage=pretraining");
    const note = await screen.findByTestId("truncation");
    expect(note).toHaveTextContent("1 of 3 examples (33.3%) are longer than 1024 tokens with studio-tiny-llama's tokenizer");
  });
});
