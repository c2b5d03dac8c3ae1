// OpenAI-style streamed chat: `POST /v1/chat/completions` with `stream: true` answers Server-Sent Events,
// one `data: {chunk}` per token delta, then `data: [DONE]`. EventSource cannot POST, so fetch reads it.
import { ApiError } from "@/api/client";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  seed?: number;
}

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** Splits an SSE byte stream into the `data:` payloads of its events. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
      if (data.length) yield data.join("\n");
    }
    if (done) return;
  }
}

/** Streams a completion; `onDelta` gets each piece of text. Resolves with the finish reason and usage. */
export async function streamChat(request: ChatRequest, onDelta: (text: string) => void, signal?: AbortSignal) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ ...request, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!response.ok || !response.body) throw await ApiError.fromResponse(response);
  let finish: string | null = null;
  let usage: ChatUsage | null = null;
  for await (const data of sseData(response.body)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data) as {
      error?: { message?: string; param?: string; code?: string };
      choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
      usage?: ChatUsage | null;
    };
    if (chunk.error) throw new ApiError(chunk.error.message ?? "The model failed.", 500, chunk.error.param ?? null, chunk.error.code ?? null);
    const choice = chunk.choices?.[0];
    if (choice?.delta?.content) onDelta(choice.delta.content);
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  return { finish, usage };
}
