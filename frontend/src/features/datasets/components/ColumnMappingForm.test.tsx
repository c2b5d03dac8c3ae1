import { fireEvent, screen, waitFor } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { mockApi, Reply } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { buildMapping, columnsFromError, needsMapping } from "../mapping";
import { stageForFormat } from "../stage";
import { UploadDropZone } from "./UploadDropZone";

// As backend/services/files.py words a file whose columns match no format.
const UNKNOWN = "Invalid training file: line 1: row matches no known format (fields present: q_text, a_text, id); accepted formats: chat {messages} (or ShareGPT {conversations: [{from, value}]}), prompt_completion {prompt, completion}; other column names need a column_mapping.";

describe("the column mapping form", () => {
  beforeEach(() => vi.unstubAllGlobals());

  it("reads the columns from a refusal and builds the mapping", () => {
    expect(columnsFromError(UNKNOWN)).toEqual(["q_text", "a_text", "id"]);
    expect(needsMapping(UNKNOWN)).toBe(true);
    expect(needsMapping("Invalid training file: line 3: invalid JSON (Expecting ',' delimiter at column 4).")).toBe(false);
    expect(buildMapping(["instruction", "input", "output"], { instruction: "q", output: "a" })).toEqual({ instruction: "q", output: "a" });
    expect(buildMapping(["prompt", "completion"], { prompt: "q" })).toBeNull();
    expect([stageForFormat("preference"), stageForFormat("text"), stageForFormat("alpaca")]).toEqual(["dpo", "pretraining", "supervised"]);
  });

  it("appears when detection fails and uploads again with the mapping", async () => {
    const { calls } = mockApi({
      "POST /v1/files": ({ body }) => ((body as { column_mapping?: string }).column_mapping
        ? { id: "file-qa", object: "file", filename: "qa.jsonl", format: "prompt_completion", num_examples: 2, bytes: 10,
            status: "processed", column_mapping: JSON.parse((body as { column_mapping: string }).column_mapping) }
        : new Reply(400, { error: { message: UNKNOWN, type: "invalid_request_error", param: "file", code: "invalid_training_file" } })),
      "GET /v1/files": { object: "list", data: [], has_more: false },
    });
    const onUploaded = vi.fn();
    renderWithProviders(<UploadDropZone onUploaded={onUploaded} />);
    const file = new File(['{"q_text": "2+2?", "a_text": "4", "id": 1}\n'], "qa.jsonl");
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });
    const form = await screen.findByRole("form", { name: "Column mapping" });
    expect(form).toBeInTheDocument();
    const submit = screen.getByRole("button", { name: "Upload with this mapping" });
    expect(submit).toBeDisabled();
    fireEvent.change(screen.getByLabelText("Column for prompt"), { target: { value: "q_text" } });
    fireEvent.change(screen.getByLabelText("Column for completion"), { target: { value: "a_text" } });
    fireEvent.click(submit);
    await waitFor(() => expect(onUploaded).toHaveBeenCalledWith(expect.objectContaining({ id: "file-qa" })));
    expect(screen.getByText(/columns read as q_text → prompt, a_text → completion/)).toBeInTheDocument();
    const posts = calls.filter((c) => c.method === "POST").map((c) => c.body as Record<string, unknown>);
    expect(posts.map((b) => b.column_mapping)).toEqual([undefined, JSON.stringify({ prompt: "q_text", completion: "a_text" })]);
  });
});
