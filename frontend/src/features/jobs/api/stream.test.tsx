import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setApiKey } from "@/api/auth";
import { FakeEventSource } from "@/test/fakeEventSource";
import { streamUrl, useJobStream } from "./stream";

const metrics = (n: number, loss: number) => ({ object: "fine_tuning.job.event", id: `ftevent-job-${n}`, created_at: n, level: "info",
  message: `step ${n}`, type: "metrics", data: { step: n, total_steps: 10, train_loss: loss } });
const message = (n: number, text: string) => ({ ...metrics(n, 0), type: "message", message: text, data: null });

function wrapper({ children }: { children: ReactNode }) {
  return <QueryClientProvider client={new QueryClient()}>{children}</QueryClientProvider>;
}

describe("useJobStream", () => {
  beforeEach(() => {
    FakeEventSource.opened = [];
    vi.stubGlobal("EventSource", FakeEventSource);
    vi.useFakeTimers({ shouldAdvanceTime: true });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("collects metrics and messages, and reopens after the last event id when the server drops it", async () => {
    const { result } = renderHook(() => useJobStream("ftjob-1"), { wrapper });
    const first = FakeEventSource.opened[0];
    expect(first.url).toBe("/v1/fine_tuning/jobs/ftjob-1/events/stream");
    act(() => {
      first.open();
      first.emit("message", message(1, "Job running"));
      first.emit("metrics", metrics(2, 3.0));
      first.emit("metrics", metrics(3, 2.5));
    });
    await waitFor(() => expect(result.current.points.map((p) => p.step)).toEqual([2, 3]));
    expect(result.current.connected).toBe(true);
    expect(result.current.log.map((e) => e.message)).toEqual(["Job running"]);

    // a transient error: the browser reconnects by itself (sending Last-Event-ID); no second source
    act(() => first.fail(false));
    expect(result.current.connected).toBe(false);
    await act(() => vi.advanceTimersByTimeAsync(5000));
    expect(FakeEventSource.opened).toHaveLength(1);

    // a refused reconnect closes it for good: we reopen after the last event we saw
    act(() => first.fail(true));
    await act(() => vi.advanceTimersByTimeAsync(2500));
    expect(FakeEventSource.opened).toHaveLength(2);
    const second = FakeEventSource.opened[1];
    expect(second.url).toBe("/v1/fine_tuning/jobs/ftjob-1/events/stream?after=ftevent-job-3");
    act(() => {
      second.open();
      second.emit("metrics", metrics(3, 2.5)); // a replayed event is not counted twice
      second.emit("metrics", metrics(4, 2.1));
      second.emit("message", { ...message(5, "Job succeeded"), type: "status" }); // the worker's stored status event
      second.emit("status", { status: "succeeded" }); // the stream's end, not an event: the log gains nothing
    });
    await waitFor(() => expect(result.current.finalStatus).toBe("succeeded"));
    expect(result.current.points.map((p) => [p.step, p.train_loss])).toEqual([[2, 3], [3, 2.5], [4, 2.1]]);
    expect(result.current.log.map((e) => e.message)).toEqual(["Job running", "Job succeeded"]);
    expect(second.readyState).toBe(FakeEventSource.CLOSED);
    expect(result.current.reconnects).toBe(1);
  });

  it("stops for good when the server ends the stream because the key was revoked", async () => {
    const { result } = renderHook(() => useJobStream("ftjob-1"), { wrapper });
    const source = FakeEventSource.opened[0];
    act(() => {
      source.open();
      source.emit("message", message(1, "Job running"));
      // the server's last frame; a browser also calls onerror for it, then sees the connection close
      source.emit("error", { error: { message: "Invalid API key: it was revoked while this stream was open.",
        type: "authentication_error", param: null, code: "invalid_api_key" } });
      source.fail(true);
    });
    await act(() => vi.advanceTimersByTimeAsync(10_000));
    expect(FakeEventSource.opened).toHaveLength(1); // not reopened with a key that is refused
    expect(source.readyState).toBe(FakeEventSource.CLOSED);
    expect(result.current.connected).toBe(false);
    expect(result.current.error).toMatch(/revoked/);
  });

  it("sends the stored API key as ?api_key= (EventSource cannot set headers)", () => {
    expect(streamUrl("ftjob-1", "ftevent-9")).toBe("/v1/fine_tuning/jobs/ftjob-1/events/stream?after=ftevent-9");
    setApiKey("sk-studio-k");
    try {
      expect(streamUrl("ftjob-1")).toBe("/v1/fine_tuning/jobs/ftjob-1/events/stream?api_key=sk-studio-k");
      expect(streamUrl("ftjob-1", "ftevent-9")).toBe(
        "/v1/fine_tuning/jobs/ftjob-1/events/stream?after=ftevent-9&api_key=sk-studio-k");
    } finally {
      setApiKey(null);
    }
  });
});
