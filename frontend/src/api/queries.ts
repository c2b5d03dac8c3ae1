// Reads that more than one feature shows (jobs, models, adapters). Feature-only reads live in the
// feature's own api/ folder; writes are one mutation hook each, beside the feature that makes them.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, unwrap, type Job } from "./client";
import type { operations } from "./schema";
import { adapterKeys, jobKeys, modelKeys } from "./keys";
import { getAdapter, listAdapters, listModels } from "./registry";

export const ACTIVE_STATUSES = new Set(["validating_files", "queued", "running", "cancelling", "paused"]);
export const isActive = (job: Pick<Job, "status">) => ACTIVE_STATUSES.has(job.status);

type JobStatus = NonNullable<NonNullable<operations["fine_tuning-list_fine_tuning_jobs"]["parameters"]["query"]>["status"]>;

/** Jobs, newest first; polls every 2 s while any of them is still active. */
export function useJobs(filter: { status?: string; limit?: number } = {}) {
  return useQuery({
    queryKey: jobKeys.list(filter),
    queryFn: ({ signal }) => unwrap(api.GET("/v1/fine_tuning/jobs", {
      params: { query: { status: (filter.status || undefined) as JobStatus | undefined, limit: filter.limit ?? 100 } },
      signal,
    })),
    placeholderData: keepPreviousData,
    refetchInterval: (query) => (query.state.data?.data.some(isActive) ? 2000 : 10000),
  });
}

/** One job; polls every 2 s while it is active (status, progress, queue position). */
export function useJob(id: string) {
  return useQuery({
    queryKey: jobKeys.detail(id),
    queryFn: ({ signal }) => unwrap(api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}", {
      params: { path: { fine_tuning_job_id: id } }, signal,
    })),
    refetchInterval: (query) => (query.state.data && isActive(query.state.data) ? 2000 : false),
  });
}

/** Base models and fine-tuned adapters (`GET /v1/models`). */
export function useModels() {
  return useQuery({ queryKey: modelKeys.lists(), queryFn: ({ signal }) => listModels(signal), staleTime: 30_000 });
}

export function useAdapters() {
  return useQuery({ queryKey: adapterKeys.lists(), queryFn: ({ signal }) => listAdapters(signal), refetchInterval: 10_000 });
}

export function useAdapter(name: string | undefined) {
  return useQuery({
    queryKey: adapterKeys.detail(name ?? ""),
    queryFn: ({ signal }) => getAdapter(name!, signal),
    enabled: !!name,
  });
}
