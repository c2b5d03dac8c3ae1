import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { adapterKeys, modelKeys } from "@/api/keys";
import { deleteAdapter, deleteAdapterVersion, getAdapterVersion, mergeVersion, setAlias } from "@/api/registry";

/** One version with lineage; polls while it is pending or merging. */
export function useAdapterVersion(name: string, version: number | undefined) {
  return useQuery({
    queryKey: adapterKeys.version(name, version ?? 0),
    queryFn: ({ signal }) => getAdapterVersion(name, version!, signal),
    enabled: version !== undefined,
    refetchInterval: (q) => {
      const v = q.state.data;
      return v && (v.status === "pending" || ["queued", "running"].includes(v.merge?.status ?? "")) ? 2000 : false;
    },
  });
}

function useRegistryWrite<A>(write: (args: A) => Promise<unknown>, name: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: write,
    onSuccess: () => Promise.all([
      client.invalidateQueries({ queryKey: adapterKeys.detail(name) }),
      client.invalidateQueries({ queryKey: adapterKeys.lists() }),
      client.invalidateQueries({ queryKey: modelKeys.all }),
    ]),
  });
}

export const useSetAlias = (name: string) =>
  useRegistryWrite(({ alias, version }: { alias: string; version: number }) => setAlias(name, alias, version), name);
export const useMergeVersion = (name: string) => useRegistryWrite((version: number) => mergeVersion(name, version), name);
export const useDeleteVersion = (name: string) => useRegistryWrite((version: number) => deleteAdapterVersion(name, version), name);
export const useDeleteAdapter = (name: string) => useRegistryWrite(() => deleteAdapter(name), name);
