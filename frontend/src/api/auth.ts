// Team mode: the studio may ask for an API key (`studio keys create`). The key lives in localStorage and
// goes out as `Authorization: Bearer` on every call; EventSource and download links cannot set headers,
// so the two URLs they open (a job's event stream, an adapter download) carry it as `?api_key=`, which the
// server accepts there only and strips before logging. Any 401 asks the user for a key (KeyPrompt).
const STORAGE_KEY = "studio.apiKey";
const AUTH_REQUIRED = "studio:auth-required";

export function getApiKey(): string | null {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) || null;
  } catch {
    return null; // storage disabled: the studio still works with auth off
  }
}

export function setApiKey(key: string | null): void {
  if (key) localStorage.setItem(STORAGE_KEY, key);
  else localStorage.removeItem(STORAGE_KEY);
}

/** `fetch` with the stored key; a 401 tells the KeyPrompt to ask for one. */
export async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const key = getApiKey();
  let response: Response;
  if (!key) {
    response = await globalThis.fetch(input, init);
  } else if (input instanceof Request) {
    const headers = new Headers(input.headers);
    headers.set("Authorization", `Bearer ${key}`);
    response = await globalThis.fetch(new Request(input, { headers }));
  } else {
    const headers = new Headers(init?.headers);
    headers.set("Authorization", `Bearer ${key}`);
    response = await globalThis.fetch(input, { ...init, headers });
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent(AUTH_REQUIRED, { detail: { hadKey: !!key } }));
  return response;
}

/** A URL a browser opens by itself (EventSource, a download link), with the key when there is one. */
export function withKey(url: string): string {
  const key = getApiKey();
  if (!key) return url;
  return `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}`;
}

/** Calls `listener` whenever the server answered 401; returns the unsubscribe function. */
export function onAuthRequired(listener: (hadKey: boolean) => void): () => void {
  const handler = (event: Event) => listener(Boolean((event as CustomEvent<{ hadKey: boolean }>).detail?.hadKey));
  window.addEventListener(AUTH_REQUIRED, handler);
  return () => window.removeEventListener(AUTH_REQUIRED, handler);
}
