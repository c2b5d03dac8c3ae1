import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { render } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "@/api/client";
import { mockApi, Reply } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { TokenHistogram } from "./TokenHistogram";
import { UploadDropZone } from "./UploadDropZone";
import { parseIssues, ValidationReport } from "./ValidationReport";

// Messages exactly as the backend words them (backend/services/files.py describe_issues).
const TWO_ISSUES = "Invalid training file: line 2, field 'messages[1].role': unknown role 'bot'; expected one of system, user, assistant, tool; line 2, field 'messages': missing assistant turn: the last message must be from the assistant.";
const TRUNCATED = "Invalid training file: line 3: invalid JSON (Unterminated string starting at column 43).";
const MORE = "Invalid training file: row 4, field 'text': must be a string; row 9, field 'text': must be a string (and 12 more problems).";

const rows = (table: HTMLElement) => within(table).getAllByRole("row").slice(1)
  .map((r) => within(r).getAllByRole("cell").map((c) => c.textContent));

describe("the dataset validation report", () => {
  beforeEach(() => vi.unstubAllGlobals());

  it("splits the server's message into line, field and problem", () => {
    expect(parseIssues(TWO_ISSUES).issues).toEqual([
      { unit: "line", line: 2, field: "messages[1].role", problem: "unknown role 'bot'; expected one of system, user, assistant, tool" },
      { unit: "line", line: 2, field: "messages", problem: "missing assistant turn: the last message must be from the assistant" },
    ]);
    expect(parseIssues(TRUNCATED).issues).toEqual([
      { unit: "line", line: 3, field: null, problem: "invalid JSON (Unterminated string starting at column 43)" },
    ]);
    const more = parseIssues(MORE);
    expect(more.issues.map((i) => [i.unit, i.line])).toEqual([["row", 4], ["row", 9]]);
    expect(more.more).toBe("and 12 more problems");
  });

  it("shows one row per problem with its line number", () => {
    render(<ValidationReport error={new ApiError(TWO_ISSUES, 400, "file", "invalid_training_file")} filename="bad.jsonl" />);
    const report = screen.getByRole("alert", { name: "Validation report" });
    expect(within(report).getByText("bad.jsonl was not accepted")).toBeInTheDocument();
    expect(rows(within(report).getByRole("table"))).toEqual([
      ["2", "messages[1].role", "unknown role 'bot'; expected one of system, user, assistant, tool"],
      ["2", "messages", "missing assistant turn: the last message must be from the assistant"],
    ]);
    expect(report).toHaveTextContent("nothing was stored");
  });

  it("shows a message without line numbers as it is", () => {
    render(<ValidationReport error={new ApiError("The file is larger than 100 MiB.", 413, "file", "file_too_large")} filename="big.jsonl" />);
    const report = screen.getByRole("alert", { name: "Validation report" });
    expect(report).toHaveTextContent("Upload failed (big.jsonl)");
    expect(report).toHaveTextContent("The file is larger than 100 MiB.");
    expect(within(report).queryByRole("table")).toBeNull();
  });

  it("reports a refused upload dropped on the zone, and accepts a good one", async () => {
    const { calls } = mockApi({
      "POST /v1/files": ({ body }) => ((body as { file: { text: string } }).file.text.includes("bot")
        ? new Reply(400, { error: { message: TWO_ISSUES, type: "invalid_request_error", param: "file", code: "invalid_training_file" } })
        : { id: "file-good", object: "file", filename: "good.jsonl", format: "chat", num_examples: 300, bytes: 10, status: "processed" }),
      "GET /v1/files": { object: "list", data: [], has_more: false },
    });
    const onUploaded = vi.fn();
    renderWithProviders(<UploadDropZone onUploaded={onUploaded} />);
    const zone = screen.getByTestId("dropzone");
    const bad = new File(['{"messages": [{"role": "bot"}]}\n'], "bad.jsonl", { type: "application/jsonl" });
    fireEvent.drop(zone, { dataTransfer: { files: [bad] } });
    const report = await screen.findByRole("alert", { name: "Validation report" });
    expect(rows(within(report).getByRole("table")).map((r) => r[0])).toEqual(["2", "2"]);
    expect(onUploaded).not.toHaveBeenCalled();

    const good = new File(['{"messages": []}\n'], "good.jsonl");
    fireEvent.drop(zone, { dataTransfer: { files: [good] } });
    await waitFor(() => expect(onUploaded).toHaveBeenCalledWith(expect.objectContaining({ id: "file-good" })));
    expect(screen.queryByRole("alert", { name: "Validation report" })).toBeNull();
    expect(screen.getByText(/good.jsonl: 300 examples, format chat/)).toBeInTheDocument();
    const posts = calls.filter((c) => c.path === "/v1/files" && c.method === "POST");
    expect(posts.map((c) => c.body)).toEqual([
      { purpose: "fine-tune", file: { name: "bad.jsonl", text: '{"messages": [{"role": "bot"}]}\n' } },
      { purpose: "fine-tune", file: { name: "good.jsonl", text: '{"messages": []}\n' } },
    ]);
  });
});

describe("the length histogram", () => {
  it("draws one bar per bucket and names the unit the server counted", () => {
    const stats = { char_stats: { count: 300, mean: 38.7, p50: 32, p95: 66, max: 90, histogram: { edges: [13, 17, 21, 25], counts: [16, 15, 8] } } };
    const { container } = render(<TokenHistogram tokenStats={stats} />);
    expect(container.querySelectorAll("rect")).toHaveLength(3);
    expect(screen.getByRole("figure")).toHaveTextContent("in characters: median 32, p95 66, max 90 over 300 examples");
    expect(container.querySelector("rect title")).toHaveTextContent("13–17 characters: 16 examples");
  });

  it("prefers token counts when the server has them", () => {
    render(<TokenHistogram tokenStats={{ count: 2, p50: 5, p95: 9, max: 9, histogram: { edges: [1, 5, 9], counts: [1, 1] } }} />);
    expect(screen.getByRole("figure")).toHaveTextContent("in tokens");
  });
});
