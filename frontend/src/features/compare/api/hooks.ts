import { useQueries } from "@tanstack/react-query";
import { jobKeys } from "@/api/keys";
import { fetchAllEvents, mergePoints, metricPoint, type MetricPoint } from "@/lib/metrics";

/** Each run's metric points (its events, read page by page); refreshed while `live` lists it. */
export function useRunMetrics(ids: string[], live: Set<string>) {
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: [...jobKeys.events(id), "metrics"],
      queryFn: async ({ signal }: { signal: AbortSignal }): Promise<MetricPoint[]> => {
        const events = await fetchAllEvents(id, signal);
        return mergePoints([], events.map(metricPoint).filter((p): p is MetricPoint => p !== null));
      },
      refetchInterval: live.has(id) ? 3000 : (false as const),
    })),
  });
}
