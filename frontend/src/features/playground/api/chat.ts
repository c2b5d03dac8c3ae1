// OpenAI-style streamed chat: `POST /v1/chat/completions` with `stream: true` answers Server-Sent Events,
// one `data: {chunk}` per token delta, then `data: [DONE]`. EventSource cannot POST, so the typed client
// hands over the response body as a stream.
import { api, ApiError } from "@/api/client";
import type { operations } from "@/api/schema";

type ChatBody = operations["inference-create_chat_completion"]["requestBody"]["content"]["application/json"];
export type ChatMessage = ChatBody["messages"][number];
export type ChatRequest = Pick<ChatBody, "model" | "messages" | "max_tokens" | "temperature" | "seed">;

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
  const { data: body, error, response } = await api.POST("/v1/chat/completions", {
    body: { ...request, stream: true, stream_options: { include_usage: true } },
    headers: { Accept: "text/event-stream" },
    parseAs: "stream",
    signal,
  });
  if (error !== undefined || !response.ok || !body) throw await ApiError.fromResponse(response, error);
  let finish: string | null = null;
  let usage: ChatUsage | null = null;
  for await (const data of sseData(body)) {
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
