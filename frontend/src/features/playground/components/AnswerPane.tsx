import { useEffect, useImperativeHandle, type Ref } from "react";
import { errorMessage } from "@/api/client";
import type { ChatRequest } from "../api/chat";
import { useAnswer } from "../api/useAnswer";

export interface PaneHandle {
  ask: (request: Omit<ChatRequest, "model">) => void;
  stop: () => void;
}

interface Props {
  model: string;
  label: string;
  ref?: Ref<PaneHandle>;
  onBusy: (model: string, busy: boolean) => void;
}

/** One model's answer to the shared prompt, streamed in. */
export function AnswerPane({ model, label, ref, onBusy }: Props) {
  const { answer, ask, stop } = useAnswer();
  useImperativeHandle(ref, () => ({ ask: (r) => void ask({ ...r, model }), stop }), [ask, stop, model]);
  const busy = answer.status === "streaming";
  useEffect(() => onBusy(model, busy), [busy, model, onBusy]);
  const tokens = answer.usage?.completion_tokens;
  return (
    <article className="pane" aria-label={`Answer from ${model}`} data-status={answer.status}>
      <header>
        <span className="pane-label">{label}</span>
        <code>{model}</code>
      </header>
      <div className="pane-text" data-testid="answer-text">
        {answer.text || (answer.status === "streaming" ? <span className="muted">Thinking…</span> : answer.status === "idle" ? <span className="muted">Ask something below.</span>
          : answer.status === "done" ? <span className="muted">(an empty answer: the model stopped at once)</span> : null)}
        {busy && <span className="cursor" aria-hidden="true">▍</span>}
      </div>
      {answer.status === "error" && <p className="field-error" role="alert">{errorMessage(answer.error)}</p>}
      <footer className="muted small">
        {answer.status === "done" && (
          <>
            {answer.seconds != null && `${answer.seconds.toFixed(1)} s`}
            {answer.firstTokenSeconds != null && ` · first token ${answer.firstTokenSeconds.toFixed(2)} s`}
            {tokens != null && answer.seconds ? ` · ${tokens} tokens, ${(tokens / answer.seconds).toFixed(1)} tok/s` : ""}
            {answer.finish && ` · ${answer.finish}`}
          </>
        )}
        {answer.status === "stopped" && "stopped"}
      </footer>
    </article>
  );
}
