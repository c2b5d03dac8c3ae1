// A job's events live over Server-Sent Events. EventSource reconnects by itself and sends
// `Last-Event-ID`; when it gives up (the server refused a reconnect) we reopen with `?after=<last id>`.
// Events are applied in batches so a replay of thousands of steps renders a few times, not thousands.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { withKey } from "@/api/auth";
import type { JobEvent } from "@/api/client";
import { jobKeys } from "@/api/keys";
import { mergePoints, metricPoint, type MetricPoint } from "@/lib/metrics";

export interface JobStream {
  points: MetricPoint[];
  log: JobEvent[];
  connected: boolean;
  finalStatus: string | null;
  reconnects: number;
  /** Why the server ended the stream early (e.g. the API key was revoked); it is not reopened. */
  error: string | null;
}

const EMPTY: JobStream = { points: [], log: [], connected: false, finalStatus: null, reconnects: 0, error: null };
const FRAME_TYPES = ["message", "metrics", "checkpoint"];
const FLUSH_MS = 100;
const RETRY_MS = 2000;

export function streamUrl(jobId: string, after?: string): string {
  const base = `/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/events/stream`;
  return withKey(after ? `${base}?after=${encodeURIComponent(after)}` : base); // EventSource sets no headers
}

export function useJobStream(jobId: string): JobStream {
  const client = useQueryClient();
  const [state, setState] = useState<JobStream>(EMPTY);

  useEffect(() => {
    setState(EMPTY);
    const seen = new Set<string>();
    const buffer: JobEvent[] = [];
    let source: EventSource | null = null;
    let lastId: string | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let finished = false;

    const flush = () => {
      flushTimer = undefined;
      const events = buffer.splice(0);
      if (events.length === 0) return;
      const points = events.map(metricPoint).filter((p): p is MetricPoint => p !== null);
      const log = events.filter((e) => e.type !== "metrics");
      setState((s) => ({ ...s, points: mergePoints(s.points, points), log: log.length ? [...s.log, ...log] : s.log }));
      if (events.some((e) => e.type === "checkpoint")) void client.invalidateQueries({ queryKey: jobKeys.checkpoints(jobId) });
      if (log.some((e) => e.type === "status")) void client.invalidateQueries({ queryKey: jobKeys.detail(jobId) });
    };

    const onFrame = (frame: MessageEvent<string>) => {
      const event = JSON.parse(frame.data) as JobEvent;
      lastId = event.id;
      if (seen.has(event.id)) return;
      seen.add(event.id);
      buffer.push(event);
      flushTimer ??= setTimeout(flush, FLUSH_MS);
    };

    const connect = () => {
      source = new EventSource(streamUrl(jobId, lastId));
      source.onopen = () => setState((s) => ({ ...s, connected: true }));
      for (const type of FRAME_TYPES) source.addEventListener(type, onFrame as EventListener);
      source.addEventListener("status", (frame) => {
        finished = true;
        source?.close();
        if (flushTimer) clearTimeout(flushTimer);
        flush();
        // The closing frame says how the job ended; it is not one of its events, so the log stays what REST
        // lists (the badge and the outcome banner show the final status).
        const status = (JSON.parse((frame as MessageEvent<string>).data) as { status?: string }).status ?? null;
        setState((s) => ({ ...s, connected: false, finalStatus: status }));
        void client.invalidateQueries({ queryKey: jobKeys.detail(jobId) });
        void client.invalidateQueries({ queryKey: jobKeys.checkpoints(jobId) });
        void client.invalidateQueries({ queryKey: jobKeys.lists() });
      });
      // The server's `event: error` frame (OpenAI's envelope): the key was revoked. Browsers deliver it to
      // onerror too, so this listener goes first and marks the stream finished: no reopening with that key.
      source.addEventListener("error", (frame) => {
        const data = (frame as MessageEvent<string>).data;
        if (!data) return; // a connection error, handled below
        finished = true;
        source?.close();
        const message = (JSON.parse(data) as { error?: { message?: string } }).error?.message ?? "The stream was ended.";
        setState((s) => ({ ...s, connected: false, error: message }));
      });
      source.onerror = () => {
        setState((s) => ({ ...s, connected: false }));
        if (finished || source?.readyState !== EventSource.CLOSED) return; // the browser retries by itself
        retryTimer = setTimeout(() => {
          setState((s) => ({ ...s, reconnects: s.reconnects + 1 }));
          connect();
        }, RETRY_MS);
      };
    };

    connect();
    return () => {
      finished = true;
      source?.close();
      if (flushTimer) clearTimeout(flushTimer);
      if (retryTimer) clearTimeout(retryTimer);
    };
  }, [jobId, client]);

  return state;
}
