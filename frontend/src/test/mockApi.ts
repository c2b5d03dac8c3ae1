// A stand-in for the backend in component tests: `fetch` answered by route ("GET /v1/models").
import { vi } from "vitest";

export type Handler = (request: { method: string; path: string; query: URLSearchParams; body: unknown }) => unknown;
export type Routes = Record<string, Handler | object>;

function readFile(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(file);
  });
}

export class Reply {
  constructor(readonly status: number, readonly body: unknown) {}
}

export function mockApi(routes: Routes) {
  const calls: { method: string; path: string; body: unknown }[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    let method: string;
    let url: URL;
    let body: unknown;
    if (init?.body instanceof FormData) {
      // jsdom's FormData and File don't survive Node's Request: read the fields directly
      method = init.method ?? "POST";
      url = new URL(String(input), "http://localhost");
      body = Object.fromEntries(await Promise.all([...init.body.entries()].map(async ([k, v]) =>
        [k, typeof v === "string" ? v : { name: v.name, text: await readFile(v) }])));
    } else {
      const request = input instanceof Request ? input : new Request(new URL(String(input), "http://localhost"), init);
      method = request.method;
      url = new URL(request.url);
      const text = await request.text();
      body = text && request.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
    }
    calls.push({ method, path: url.pathname, body });
    const route = routes[`${method} ${url.pathname}`];
    if (route === undefined) return Response.json({ error: { message: `no mock for ${method} ${url.pathname}` } }, { status: 404 });
    const result = typeof route === "function" ? await (route as Handler)({ method, path: url.pathname, query: url.searchParams, body }) : route;
    if (result instanceof Reply) return Response.json(result.body, { status: result.status });
    return Response.json(result);
  });
  vi.stubGlobal("fetch", fetchMock);
  return { calls, fetchMock };
}
