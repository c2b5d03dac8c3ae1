import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Job, type JobCreate } from "@/api/client";
import { estimateKeys, jobKeys, modelKeys } from "@/api/keys";
import { estimateJob, getModel } from "@/api/registry";

export function useCreateJob() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: JobCreate) => unwrap(api.POST("/v1/fine_tuning/jobs", { body })),
    onSuccess: (job) => {
      client.setQueryData(jobKeys.detail(job.id), job);
      return client.invalidateQueries({ queryKey: jobKeys.lists() });
    },
  });
}

const ACTION_PATHS = {
  cancel: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
  pause: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause",
  resume: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/resume",
} as const;

function useJobAction(action: keyof typeof ACTION_PATHS) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.POST(ACTION_PATHS[action], { params: { path: { fine_tuning_job_id: id } } })),
    onSuccess: (job: Job) => {
      client.setQueryData(jobKeys.detail(job.id), job);
      return client.invalidateQueries({ queryKey: jobKeys.lists() });
    },
  });
}

export const useCancelJob = () => useJobAction("cancel");
export const usePauseJob = () => useJobAction("pause");
export const useResumeJob = () => useJobAction("resume");

export function useCheckpoints(id: string, live: boolean) {
  return useQuery({
    queryKey: jobKeys.checkpoints(id),
    queryFn: ({ signal }) => unwrap(api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", {
      params: { path: { fine_tuning_job_id: id }, query: { limit: 100 } }, signal,
    })),
    refetchInterval: live ? 5000 : false,
  });
}

/** Parameters and memory for a job body; the previous answer stays on screen while the next loads. */
export function useEstimate(body: Partial<JobCreate> | null) {
  return useQuery({
    queryKey: estimateKeys.body(body),
    queryFn: ({ signal }) => estimateJob(body!, signal),
    enabled: body !== null && !!body.model,
    placeholderData: keepPreviousData,
    retry: false,
    staleTime: 60_000,
  });
}

/** A base model's linear module names (what `target_modules` may name). */
export function useModelModules(model: string, listed: string[] | null | undefined) {
  return useQuery({
    queryKey: [...modelKeys.detail(model), "modules"],
    queryFn: async ({ signal }) => (await getModel(model, signal)).modules ?? [],
    enabled: !!model && !listed,
    initialData: listed ?? undefined,
    staleTime: Infinity,
    retry: false,
  });
}
