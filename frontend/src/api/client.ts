// The one way the UI talks to the backend: a typed client over the generated OpenAPI schema.
import createClient from "openapi-fetch";
import { authFetch } from "./auth";
import type { components, operations, paths } from "./schema";

// Absolute URLs (same origin), and `fetch` looked up per call (so tests can stub it), with the API key.
export const api = createClient<paths>({
  baseUrl: typeof window === "undefined" ? "" : window.location.origin,
  fetch: (request) => authFetch(request),
});

type Schemas = components["schemas"];
export type Job = Schemas["JobObject"];
export type JobEvent = Schemas["JobEventObject"];
export type Checkpoint = Schemas["CheckpointObject"];
export type FileObject = Schemas["FileObject"];
export type JobCreate = operations["fine_tuning-create_fine_tuning_job"]["requestBody"]["content"]["application/json"];
export type Tuning = NonNullable<JobCreate["tuning"]>;
export type TuningType = NonNullable<Tuning["type"]>;

/** The OpenAI error envelope as an exception: `param` names the field (e.g. `tuning.r`). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  static async fromResponse(response: Response, body?: unknown): Promise<ApiError> {
    let payload = body;
    if (payload === undefined) {
      try {
        payload = await response.clone().json();
      } catch {
        payload = undefined;
      }
    }
    const error = (payload as { error?: { message?: string; param?: string | null; code?: string | null } })?.error;
    const detail = (payload as { detail?: unknown })?.detail;
    const message = error?.message ?? (typeof detail === "string" ? detail : `${response.status} ${response.statusText}`);
    return new ApiError(message, response.status, error?.param ?? null, error?.code ?? null);
  }
}

/** The data of an openapi-fetch call, or its error envelope thrown as an `ApiError`. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw await ApiError.fromResponse(response, error);
  return data as T;
}

/** A JSON request for paths the client has no type for (e.g. a page's own `fetch` of a download URL). */
export async function requestJson<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const response = await authFetch(path, {
    method,
    signal,
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await ApiError.fromResponse(response);
  return (await response.json()) as T;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
