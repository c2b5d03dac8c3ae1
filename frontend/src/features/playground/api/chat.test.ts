import { afterEach, describe, expect, it, vi } from "vitest";
import { sseData, streamChat } from "./chat";

function streamOf(...parts: string[]) {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(encoder.encode(p));
      controller.close();
    },
  });
}

const chunk = (content: string | null, finish: string | null = null) =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;

describe("streamed chat", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("splits Server-Sent Events into data payloads, whatever the network chunking", async () => {
    const out: string[] = [];
    for await (const d of sseData(streamOf("data: a\n", "\ndata: b\r\n\r\n: keep-alive\n\nda", "ta: [DONE]\n\n"))) out.push(d);
    expect(out).toEqual(["a", "b", "[DONE]"]);
  });

  it("hands each delta over as it arrives and resolves with the finish reason and usage", async () => {
    const body = streamOf(chunk("ta"), chunk("c"), chunk(null, "stop"),
      `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } })}\n\n`, "data: [DONE]\n\n");
    const fetchMock = vi.fn(async () => new Response(body, { headers: { "Content-Type": "text/event-stream" } }));
    vi.stubGlobal("fetch", fetchMock);
    const deltas: string[] = [];
    const result = await streamChat({ model: "chat-lora@prod", messages: [{ role: "user", content: "Reverse cat" }] }, (d) => deltas.push(d));
    expect(deltas).toEqual(["ta", "c"]);
    expect(result).toEqual({ finish: "stop", usage: { prompt_tokens: 5, completion_tokens: 2 } });
    const request = (fetchMock.mock.calls[0] as unknown as [Request])[0];
    expect(await request.json()).toMatchObject({ model: "chat-lora@prod", stream: true });
  });

  it("throws the error envelope of a refused request", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json(
      { error: { message: "No such model: 'nope'", type: "invalid_request_error", param: "model", code: "model_not_found" } }, { status: 404 })));
    await expect(streamChat({ model: "nope", messages: [{ role: "user", content: "hi" }] }, () => {}))
      .rejects.toMatchObject({ message: "No such model: 'nope'", param: "model", status: 404 });
  });
});
