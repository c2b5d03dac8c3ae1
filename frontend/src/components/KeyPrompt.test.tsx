import { useQuery } from "@tanstack/react-query";
import { fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { getApiKey, setApiKey } from "@/api/auth";
import { api, unwrap } from "@/api/client";
import { mockApi, Reply } from "@/test/mockApi";
import { renderWithProviders } from "@/test/render";
import { KeyPrompt } from "./KeyPrompt";

const GOOD = "sk-studio-good";
const UNAUTHORIZED = new Reply(401, { error: { message: "Missing API key", type: "authentication_error", param: null, code: "missing_api_key" } });

function Files() {
  const files = useQuery({ queryKey: ["files"], queryFn: () => unwrap(api.GET("/v1/files")) });
  return <p>{files.data ? `${files.data.data.length} files` : files.isError ? "refused" : "loading"}</p>;
}

/** The authorization header of each call the mock saw. */
function sentKeys(fetchMock: ReturnType<typeof mockApi>["fetchMock"]): (string | null)[] {
  return fetchMock.mock.calls.map(([input, init]) =>
    input instanceof Request ? input.headers.get("Authorization") : new Headers(init?.headers).get("Authorization"));
}

describe("the API key prompt (team mode)", () => {
  beforeEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });
  afterEach(() => localStorage.clear());

  it("asks for a key on a 401, stores it, and retries with Authorization: Bearer", async () => {
    const { fetchMock } = mockApi({
      "GET /v1/files": () => (getApiKey() === GOOD ? { object: "list", data: [], has_more: false } : UNAUTHORIZED),
    });
    renderWithProviders(<><Files /><KeyPrompt /></>);
    const dialog = await screen.findByRole("dialog", { name: "API key required" });
    expect(dialog).toHaveTextContent("studio keys create");
    expect(screen.getByText("refused")).toBeInTheDocument();

    fireEvent.change(screen.getByPlaceholderText("sk-studio-…"), { target: { value: ` ${GOOD} ` } });
    fireEvent.click(screen.getByRole("button", { name: "Use this key" }));
    expect(await screen.findByText("0 files")).toBeInTheDocument();
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(localStorage.getItem("studio.apiKey")).toBe(GOOD);
    expect(sentKeys(fetchMock)).toEqual([null, `Bearer ${GOOD}`]);
  });

  it("says so when the stored key is refused, and can forget it", async () => {
    setApiKey("sk-studio-revoked");
    mockApi({ "GET /v1/files": UNAUTHORIZED });
    renderWithProviders(<><Files /><KeyPrompt /></>);
    expect(await screen.findByRole("dialog")).toHaveTextContent("refused the stored key");
    fireEvent.click(screen.getByRole("button", { name: "Forget the stored key" }));
    await waitFor(() => expect(getApiKey()).toBeNull());
    expect(screen.getByRole("dialog")).toHaveTextContent("studio keys create");
  });
});
