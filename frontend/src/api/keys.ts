// Query-key factories, one per resource (all / lists / list(filter) / detail(id)). Mutations invalidate
// through these, so every page that shows a resource refreshes together.
export const fileKeys = {
  all: ["files"] as const,
  lists: () => [...fileKeys.all, "list"] as const,
  list: (filter: { purpose?: string } = {}) => [...fileKeys.lists(), filter] as const,
  detail: (id: string) => [...fileKeys.all, "detail", id] as const,
  content: (id: string) => [...fileKeys.all, "content", id] as const,
};

export const jobKeys = {
  all: ["jobs"] as const,
  lists: () => [...jobKeys.all, "list"] as const,
  list: (filter: { status?: string } = {}) => [...jobKeys.lists(), filter] as const,
  detail: (id: string) => [...jobKeys.all, "detail", id] as const,
  events: (id: string) => [...jobKeys.all, "events", id] as const,
  checkpoints: (id: string) => [...jobKeys.all, "checkpoints", id] as const,
};

export const modelKeys = {
  all: ["models"] as const,
  lists: () => [...modelKeys.all, "list"] as const,
  detail: (id: string) => [...modelKeys.all, "detail", id] as const,
};

export const adapterKeys = {
  all: ["adapters"] as const,
  lists: () => [...adapterKeys.all, "list"] as const,
  detail: (name: string) => [...adapterKeys.all, "detail", name] as const,
  version: (name: string, version: number) => [...adapterKeys.detail(name), "version", version] as const,
};

export const estimateKeys = {
  all: ["estimate"] as const,
  body: (body: unknown) => [...estimateKeys.all, body] as const,
};
