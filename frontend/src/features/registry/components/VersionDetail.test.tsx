import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockApi } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { AdapterDetail } from "./AdapterDetail";
import { VersionDetail } from "./VersionDetail";

const FLAGS_OK = { peft_type: "LORA", rank: 8, modules_to_save: false, resized_vocabulary: false, rank_above_max: false,
  max_lora_rank: 64, adapter_servable: true, reasons: [] };
const version = (over: object = {}) => ({
  object: "adapter.version", id: "adv-1", name: "bot", version: 1, model: "bot:1", status: "ready", job_id: "ftjob-1",
  base_model: "studio-tiny-llama", method: "lora", artifact: "peft", aliases: [], flags: FLAGS_OK, lineage: null, error: null,
  merge: null, warnings: [], mergeable: true, merge_unavailable_reason: null, created_at: 1_700_000_000, ...over,
});
const serve = (v: ReturnType<typeof version>) => mockApi({ [`GET /v1/adapters/bot/versions/${v.version}`]: v });

describe("VersionDetail", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("offers Merge into base for a mergeable version", async () => {
    serve(version());
    renderWithProviders(<VersionDetail name="bot" version={1} />);
    expect(await screen.findByRole("button", { name: "Merge into base" })).toBeEnabled();
  });

  it.each([
    ["full", "'bot:1' was trained with full: it is already a full model (download it as is)."],
    ["prefix_tuning", "'bot:1' (prefix_tuning) cannot be merged into its base: prompt-based methods and bottleneck adapters add modules instead of changing weights."],
  ])("hides Merge into base for %s and says why", async (method, reason) => {
    serve(version({ method, artifact: method === "full" ? "full" : "peft", mergeable: false, merge_unavailable_reason: reason, flags: null }));
    renderWithProviders(<VersionDetail name="bot" version={1} />);
    expect(await screen.findByText(`No merge: ${reason}`)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /merge/i })).toBeNull();
  });

  it("says in words which serving checks pass and which are problems (no bare ✓/✗)", async () => {
    serve(version({ flags: { ...FLAGS_OK, rank: 128, rank_above_max: true, adapter_servable: false,
      reasons: ["rank 128 is above max_lora_rank 64"] } }));
    renderWithProviders(<VersionDetail name="bot" version={1} />);
    const checks = await screen.findByRole("table", { name: "Serving checks" });
    const row = (label: string) => within(checks).getByRole("rowheader", { name: label }).closest("tr")!;
    expect(row("Full modules")).toHaveTextContent("OK");
    expect(row("Full modules")).toHaveTextContent("none (only adapter weights)");
    expect(row("Rank")).toHaveTextContent("Problem");
    expect(row("Rank")).toHaveTextContent("128, above the servers' max LoRA rank 64");
    expect(screen.getByText(/vLLM and LoRAX will not serve it as an adapter: rank 128 is above/)).toBeInTheDocument();
    expect(document.body.textContent).not.toMatch(/[✓✗]/);
  });

  it("shows the run's warnings", async () => {
    serve(version({ warnings: [{ code: "loss_diverged", message: "The training loss rose from 9.0 to 204.6." }] }));
    renderWithProviders(<VersionDetail name="bot" version={1} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("loss_diverged The training loss rose from 9.0 to 204.6.");
    expect(alert).toHaveTextContent("may take an alias");
  });
});

describe("AdapterDetail", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("badges a version with warnings and says so when an alias would point at it", async () => {
    const warned = version({ warnings: [{ code: "loss_diverged", message: "The loss exploded." }] });
    const fine = version({ id: "adv-2", version: 2, model: "bot:2" });
    mockApi({
      "GET /v1/adapters/bot": { object: "adapter", id: "bot", name: "bot", created_at: 1_700_000_000, latest_version: 2,
        base_model: "studio-tiny-llama", aliases: {}, versions: [warned, fine], owner: null, team: null },
      "GET /v1/adapters/bot/versions/2": fine,
    });
    renderWithProviders(<AdapterDetail name="bot" />);
    const table = await screen.findByRole("table", { name: "Versions" });
    const rows = within(table).getAllByRole("row");
    expect(rows[1]).toHaveTextContent("loss diverged");
    expect(rows[2]).not.toHaveTextContent("loss diverged");
    const form = screen.getByRole("form", { name: "Set alias" });
    expect(within(form).queryByRole("note")).toBeNull();
    fireEvent.change(within(form).getByRole("combobox", { name: "Version" }), { target: { value: "1" } });
    await waitFor(() => expect(within(form).getByRole("note")).toHaveTextContent("v1 has warnings (loss diverged)"));
    expect(within(form).getByRole("button", { name: "Point alias" })).toBeEnabled();
  });
});
