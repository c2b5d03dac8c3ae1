import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { authFetch } from "@/api/auth";
import { api, ApiError, unwrap, type FileObject } from "@/api/client";
import { fileKeys } from "@/api/keys";
import { readPreview } from "./preview";

export function useFiles() {
  return useQuery({
    queryKey: fileKeys.list(),
    queryFn: ({ signal }) => unwrap(api.GET("/v1/files", { params: { query: { limit: 100 } }, signal })),
  });
}

export function useFile(id: string | undefined) {
  return useQuery({
    queryKey: fileKeys.detail(id ?? ""),
    queryFn: ({ signal }) => unwrap(api.GET("/v1/files/{file_id}", { params: { path: { file_id: id! } }, signal })),
    enabled: !!id,
  });
}

/** The first rows of a file, parsed in the browser (JSONL, JSON, CSV; not Parquet). */
export function useFilePreview(file: FileObject | undefined, rows = 8) {
  return useQuery({
    queryKey: [...fileKeys.content(file?.id ?? ""), rows],
    queryFn: ({ signal }) => readPreview(`/v1/files/${encodeURIComponent(file!.id)}/content`, file!.filename, rows, signal),
    enabled: !!file,
    staleTime: Infinity,
  });
}

/** Token stats of a file with a base model's tokenizer, and what `max_seq_length` would truncate. */
export function useTokenStats(id: string, model: string | undefined, maxSeqLength: number | undefined) {
  return useQuery({
    queryKey: [...fileKeys.detail(id), "token_stats", model ?? "", maxSeqLength ?? 0],
    queryFn: ({ signal }) => unwrap(api.GET("/v1/files/{file_id}/token_stats", {
      params: { path: { file_id: id }, query: { model: model!, max_seq_length: maxSeqLength } }, signal })),
    enabled: !!id && !!model && !!maxSeqLength,
    staleTime: Infinity,
    retry: false,
  });
}

export interface UploadInput {
  file: File;
  /** studio field -> the file's column, when the server could not detect it. */
  columnMapping?: Record<string, string>;
}

/** Upload a dataset; the server validates it and answers 400 with a line-by-line report when it is bad. */
export function useUploadFile() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (input: File | UploadInput): Promise<FileObject> => {
      const { file, columnMapping } = input instanceof File ? { file: input, columnMapping: undefined } : input;
      const form = new FormData();
      form.append("purpose", "fine-tune");
      if (columnMapping) form.append("column_mapping", JSON.stringify(columnMapping));
      form.append("file", file, file.name);
      const response = await authFetch("/v1/files", { method: "POST", body: form });
      if (!response.ok) throw await ApiError.fromResponse(response);
      return (await response.json()) as FileObject;
    },
    onSuccess: (file) => {
      client.setQueryData(fileKeys.detail(file.id), file);
      return client.invalidateQueries({ queryKey: fileKeys.lists() });
    },
  });
}

export function useDeleteFile() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/v1/files/{file_id}", { params: { path: { file_id: id } } })),
    onSuccess: (_data, id) => {
      client.removeQueries({ queryKey: fileKeys.detail(id) });
      return client.invalidateQueries({ queryKey: fileKeys.lists() });
    },
  });
}
