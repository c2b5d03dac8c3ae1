import { useCallback, useRef, useState } from "react";
import { streamChat, type ChatRequest, type ChatUsage } from "./chat";

export interface Answer {
  text: string;
  status: "idle" | "streaming" | "done" | "error" | "stopped";
  error: unknown;
  seconds: number | null;
  firstTokenSeconds: number | null;
  usage: ChatUsage | null;
  finish: string | null;
}

const IDLE: Answer = { text: "", status: "idle", error: null, seconds: null, firstTokenSeconds: null, usage: null, finish: null };

/** One streamed answer: its text as it arrives, timing, and a way to stop it. */
export function useAnswer() {
  const [answer, setAnswer] = useState<Answer>(IDLE);
  const controller = useRef<AbortController | null>(null);

  const ask = useCallback(async (request: ChatRequest) => {
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    const started = performance.now();
    let first: number | null = null;
    setAnswer({ ...IDLE, status: "streaming" });
    try {
      const { finish, usage } = await streamChat(request, (delta) => {
        first ??= (performance.now() - started) / 1000;
        setAnswer((a) => ({ ...a, text: a.text + delta, firstTokenSeconds: first }));
      }, abort.signal);
      setAnswer((a) => ({ ...a, status: "done", finish, usage, seconds: (performance.now() - started) / 1000 }));
    } catch (error) {
      const stopped = abort.signal.aborted;
      setAnswer((a) => ({ ...a, status: stopped ? "stopped" : "error", error: stopped ? null : error, seconds: (performance.now() - started) / 1000 }));
    }
  }, []);

  const stop = useCallback(() => controller.current?.abort(), []);
  const reset = useCallback(() => setAnswer(IDLE), []);
  return { answer, ask, stop, reset };
}
